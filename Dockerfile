# syntax=docker/dockerfile:1
# A static, pure-Go binary (modernc.org/sqlite needs no cgo) on distroless.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/mediad ./cmd/mediad

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mediad /mediad
ENV LISTEN_ADDR=0.0.0.0:8789 DATA_DIR=/data
VOLUME /data
EXPOSE 8789
USER nonroot
ENTRYPOINT ["/mediad"]
