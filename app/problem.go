package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/logicspike/mediad/internal/media"
)

// problem is an RFC 9457 problem document. Extensions carries members
// beyond the standard ones (e.g. the readiness checks).
type problem struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Status     int            `json:"status"`
	Detail     string         `json:"detail,omitempty"`
	Code       string         `json:"code"`
	Instance   string         `json:"instance,omitempty"`
	Extensions map[string]any `json:"-"`
}

func (p problem) MarshalJSON() ([]byte, error) {
	type plain problem
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	ext, err := json.Marshal(p.Extensions)
	if err != nil {
		return nil, err
	}
	return append(append(b[:len(b)-1], ','), ext[1:]...), nil
}

// statusOf maps an error to its status and code: the one place that does.
func statusOf(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch media.KindOf(err) {
	case media.KindBadRequest:
		return http.StatusBadRequest, "bad_request"
	case media.KindBody:
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, "too_large"
		}
		if errors.Is(err, errShuttingDown) {
			return http.StatusServiceUnavailable, "unavailable"
		}
		return http.StatusBadRequest, "bad_request"
	case media.KindForbidden:
		return http.StatusForbidden, "forbidden"
	case media.KindNotFound:
		return http.StatusNotFound, "not_found"
	case media.KindInProgress:
		return http.StatusConflict, "in_progress"
	case media.KindTooLarge:
		return http.StatusRequestEntityTooLarge, "too_large"
	case media.KindUnsupportedType:
		return http.StatusUnsupportedMediaType, "unsupported_media_type"
	case media.KindInvalidImage:
		return http.StatusUnprocessableEntity, "invalid_image"
	case media.KindIdempotencyReused:
		return http.StatusUnprocessableEntity, "idempotency_key_reused"
	case media.KindStorage:
		return http.StatusBadGateway, "storage_unavailable"
	case media.KindUnavailable:
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// writeError answers with the problem for err and logs it: server-side
// failures as errors (with the cause), the caller's mistakes at debug.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, code := statusOf(err)
	detail := "internal error"
	var me *media.Error
	if errors.As(err, &me) {
		detail = me.Detail
		if status == http.StatusRequestEntityTooLarge && me.Kind == media.KindBody {
			detail = "the request body is larger than this purpose allows"
		}
	}
	level, msg := slog.LevelDebug, "request failed"
	switch {
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		level, msg = slog.LevelInfo, "request cancelled: the client went away"
	case status >= 500:
		level = slog.LevelError
	}
	log.Log(r.Context(), level, msg, "status", status, "code", code, "err", err)
	writeProblem(w, problem{Status: status, Code: code, Detail: detail})
}

// writeProblem sends a problem document.
func writeProblem(w http.ResponseWriter, p problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	writeJSONAs(w, "application/problem+json", p.Status, p)
}

// writeJSON sends v as JSON: the one place that encodes responses.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, "application/json", status, v)
}

func writeJSONAs(w http.ResponseWriter, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Default().Error("encoding a response", "err", err)
		http.Error(w, `{"status":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// errShuttingDown is the cause given to requests cut by the shutdown grace.
var errShuttingDown = errors.New("the server is shutting down")

// ShutdownCause marks a context cancelled because the server is stopping.
func ShutdownCause() error { return errShuttingDown }
