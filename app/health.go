package app

import (
	"context"
	"embed"
	"net/http"
	"time"

	"github.com/logicspike/mediad/internal/media"
)

// handleHealth is liveness: the process answers.
func handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("Media Service OK"))
	})
}

// handleReady is readiness: the database and the store answer.
func handleReady(svc *media.Service, extra map[string]func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		all := svc.Ready(ctx)
		for name, check := range extra {
			all = append(all, media.Check{Name: name, Err: check(ctx)})
		}
		checks := map[string]string{}
		failed := ""
		for _, c := range all {
			checks[c.Name] = "ok"
			if c.Err != nil {
				checks[c.Name] = c.Err.Error()
				if failed != "" {
					failed += ", "
				}
				failed += c.Name
			}
		}
		if failed != "" {
			writeProblem(w, problem{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Detail: "not ready: " + failed, Extensions: map[string]any{"checks": checks}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	})
}

// handleNotFound answers every unknown path with a problem.
func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such route"})
	})
}

//go:embed web
var web embed.FS

// handleDemo serves the demo page (embedded mode only).
func handleDemo() http.Handler {
	page, _ := web.ReadFile("web/index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob: http: https:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
	})
}
