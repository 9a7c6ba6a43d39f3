// Package app is mediad's HTTP surface: routes, handlers, middleware and
// the one mapping from errors to problem documents. Handlers decode the
// request, call internal/media, and encode the answer.
package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/logicspike/mediad/config"
	"github.com/logicspike/mediad/internal/media"
)

// Deps is what the server needs; main builds them.
type Deps struct {
	Config config.Config
	Media  *media.Service
	Log    *slog.Logger
	// Blobs serves GET /blobs/{key...} with local-disk storage; nil otherwise.
	Blobs http.Handler
	// RateLimits limits each user's requests and uploads.
	RateLimits RateLimits
	// Checks are readiness checks beyond the database and the store (Redis).
	Checks map[string]func(context.Context) error
}

// NewServer returns mediad's whole HTTP handler.
func NewServer(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	m := newMetrics()
	mux := http.NewServeMux()
	addRoutes(mux, d, m)
	var h http.Handler = mux
	h = corsFor(d.Config.CORSAllowedOrigins).Handler(h)
	h = recoverPanics(d.Log, h)
	h = observe(d.Log, m, h)
	return requestID(h)
}
