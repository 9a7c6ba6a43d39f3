# mediad — see README.md. `make run` serves on the embedded defaults;
# `make test` installs what the tests need, then runs them all.

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

VERSITYGW_VERSION := v1.8.0
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run build bench-load test test-deps vet fmt-check generate check-generate fuzz bench bench-rss bench-tools clean

run:
	$(GO) run ./cmd/mediad

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/mediad ./cmd/mediad

## test-deps: PostgreSQL 15 and Redis from Debian, versitygw pinned, /usr/bin/time.
test-deps:
	@pkgs=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	command -v redis-server >/dev/null 2>&1 || pkgs="$$pkgs redis-server"; \
	[ -x /usr/bin/time ] || pkgs="$$pkgs time"; \
	if [ -n "$$pkgs" ]; then \
		echo "installing:$$pkgs"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs; \
	fi
	@if ! command -v versitygw >/dev/null 2>&1; then \
		echo "installing versitygw $(VERSITYGW_VERSION)"; \
		$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); \
	fi

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'd:"; echo "$$out"; exit 1; fi

test: test-deps fmt-check vet
	$(GO) test -race -count=1 ./...

generate:
	$(GO) generate ./ent

## check-generate: the committed ent code is what `go generate ./ent` makes.
check-generate: generate
	git diff --exit-code -- ent

## fuzz: each fuzz target briefly (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzUpload$$' -fuzztime $(FUZZTIME) ./app
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCursor$$' -fuzztime $(FUZZTIME) ./internal/media
	$(GO) test -run '^$$' -fuzz '^FuzzOrientation$$' -fuzztime $(FUZZTIME) ./internal/imagery
	$(GO) test -run '^$$' -fuzz '^FuzzHeader$$' -fuzztime $(FUZZTIME) ./internal/imagery

bench-tools:
	@command -v benchstat >/dev/null 2>&1 || $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

## bench: Go benchmarks side by side, 6 runs each, summarised by benchstat;
## then the 1 GiB streaming upload with mediad's peak RSS.
bench: test-deps bench-tools
	mkdir -p bench
	$(GO) test -run '^$$' -bench . -count 6 ./internal/imagery ./internal/ratelimit > bench/go.txt; \
		status=$$?; cat bench/go.txt; exit $$status
	benchstat bench/go.txt
	$(MAKE) bench-rss
	bash bench/load.sh | tee bench/load.txt

bench-rss: test-deps
	mkdir -p bench
	$(GO) test -run '^$$' -bench BenchmarkUploadPeakRSS -benchtime 1x -timeout 30m ./cmd/mediad > bench/rss.txt; \
		status=$$?; cat bench/rss.txt; exit $$status

bench-load:
	bash bench/load.sh

clean:
	rm -rf bin data bench/*.txt
