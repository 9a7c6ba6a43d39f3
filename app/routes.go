package app

import (
	"net/http"

	"github.com/logicspike/mediad/internal/media"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes maps the whole API (../shared/design/API.md).
func addRoutes(mux *http.ServeMux, d Deps, m *metrics) {
	authed := func(h http.Handler) http.Handler {
		return identity(d.Config.GatewaySecrets, d.Log, rateLimit(d.RateLimits, d.Log, m, false, h))
	}
	uploads := func(h http.Handler) http.Handler {
		return identity(d.Config.GatewaySecrets, d.Log, rateLimit(d.RateLimits, d.Log, m, true, h))
	}

	mux.Handle("POST /upload", uploads(handleUpload(d.Media, d.Log, m)))
	mux.Handle("GET /files", authed(handleListFiles(d.Media, d.Log)))
	mux.Handle("GET /files/{id}", authed(handleGetFile(d.Media, d.Log)))
	mux.Handle("DELETE /files/{id}", authed(handleDeleteFile(d.Media, d.Log)))
	mux.Handle("GET /files/{id}/variants/{name}", authed(handleVariant(d.Media, d.Log)))

	mux.Handle("GET /users/{userId}/avatar", handleCurrent(d.Media, d.Log, media.Avatar, "userId"))
	mux.Handle("GET /tenants/{tenantId}/logo", handleCurrent(d.Media, d.Log, media.Logo, "tenantId"))

	mux.Handle("GET /health", handleHealth())
	mux.Handle("GET /admin/usage", authed(handleUsage(d.Media, d.Log)))

	mux.Handle("GET /ready", handleReady(d.Media, d.Checks))
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
	if d.Blobs != nil {
		mux.Handle("GET /blobs/{key...}", d.Blobs)
	}
	if d.Config.Demo() {
		mux.Handle("GET /{$}", handleDemo())
	}
	mux.Handle("/", handleNotFound())
}
