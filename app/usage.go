package app

import (
	"log/slog"
	"net/http"

	"github.com/logicspike/mediad/internal/media"
)

// handleUsage answers GET /admin/usage (media:admin only).
func handleUsage(svc *media.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		u, err := svc.Usage(r.Context(), actorOf(r), media.UsageQuery{
			TenantID: q.Get("tenantId"), UserID: q.Get("userId"), GroupBy: q.Get("groupBy"), From: q.Get("from"), To: q.Get("to"),
		})
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
}
