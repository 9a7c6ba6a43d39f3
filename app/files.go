package app

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/logicspike/mediad/internal/media"
)

func handleListFiles(svc *media.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		lq := media.ListQuery{Cursor: q.Get("cursor"), Purpose: q.Get("purpose"), Status: q.Get("status")}
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n == 0 {
				writeError(w, r, log, &media.Error{Kind: media.KindBadRequest, Detail: "limit must be a whole number between 1 and 100"})
				return
			}
			lq.Limit = n
		}
		page, err := svc.List(r.Context(), actorOf(r), lq)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
	})
}

func handleGetFile(svc *media.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := svc.Get(r.Context(), actorOf(r), r.PathValue("id"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, f)
	})
}

func handleDeleteFile(svc *media.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := svc.Delete(r.Context(), actorOf(r), r.PathValue("id")); err != nil {
			writeError(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleVariant(svc *media.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		url, err := svc.VariantURL(r.Context(), actorOf(r), r.PathValue("id"), r.PathValue("name"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "private, max-age=60")
		http.Redirect(w, r, url, http.StatusFound)
	})
}

// handleCurrent redirects to a user's current avatar or a tenant's current
// logo, in the asked size; it needs no identity (widgets embed it).
func handleCurrent(svc *media.Service, log *slog.Logger, p media.Purpose, param string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		url, err := svc.CurrentURL(r.Context(), p, r.PathValue(param), r.URL.Query().Get("size"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		http.Redirect(w, r, url, http.StatusFound)
	})
}
