package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/mediad/internal/media"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/cors"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	actorKey
)

// requestID takes the gateway's X-Request-Id when it is sane, else makes
// one, and puts it on the context (for logs) and on every response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// LogHandler adds the request id of the context to every log record.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe logs each request and counts it in the metrics, by route pattern
// (never by raw path, which would make a series per file).
func observe(log *slog.Logger, m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes), slog.Duration("elapsed", elapsed))
	})
}

// recoverPanics turns a panic into a 500 problem and a logged stack.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic", "value", v, "stack", string(debug.Stack()))
				writeProblem(w, problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// corsFor allows the listed origins only, on preflights and on the actual
// responses, with the identity headers and Idempotency-Key.
func corsFor(origins []string) *cors.Cors {
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions},
		AllowedHeaders: []string{"x-user-id", "x-tenant-id", "x-user-permissions", "Idempotency-Key", "Content-Type", "X-Request-Id"},
		ExposedHeaders: []string{"X-Request-Id", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Location"},
		MaxAge:         600,
	})
}

// identity reads who calls from the gateway's headers, after checking the
// gateway secret when one is configured. Missing or bad: 401.
func identity(secrets []string, log *slog.Logger, next http.Handler) http.Handler {
	sums := make([][32]byte, len(secrets))
	for i, s := range secrets {
		sums[i] = sha256.Sum256([]byte(s))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(sums) > 0 {
			given := sha256.Sum256([]byte(r.Header.Get("x-gateway-secret")))
			ok := 0
			for _, s := range sums { // no early exit: every secret is compared
				ok |= subtle.ConstantTimeCompare(given[:], s[:])
			}
			if ok != 1 || r.Header.Get("x-gateway-secret") == "" {
				writeProblem(w, problem{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: "missing or wrong x-gateway-secret"})
				return
			}
		}
		if r.Header.Get("x-user-id") == "" {
			writeProblem(w, problem{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: "x-user-id is required"})
			return
		}
		actor, err := media.NewActor(r.Header.Get("x-user-id"), r.Header.Get("x-tenant-id"), strings.Split(r.Header.Get("x-user-permissions"), ","))
		if err != nil {
			writeProblem(w, problem{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: err.Error()})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey, actor)))
	})
}

// actorOf is the caller identity put on the context by identity.
func actorOf(r *http.Request) media.Actor {
	a, _ := r.Context().Value(actorKey).(media.Actor)
	return a
}

// metrics are the service's Prometheus series, on a registry of its own
// (so that tests can build many servers).
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	uploads  *prometheus.CounterVec
	bytes    *prometheus.CounterVec

	limited       prometheus.Counter
	limiterErrors prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediad_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mediad_http_request_duration_seconds", Help: "HTTP request duration by route.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"route"}),
		uploads:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediad_uploads_total", Help: "Uploads by purpose and result code (created or an error code)."}, []string{"purpose", "result"}),
		bytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediad_upload_bytes_total", Help: "Bytes stored by successful uploads, by purpose."}, []string{"purpose"}),
	}
	m.limited = prometheus.NewCounter(prometheus.CounterOpts{Name: "mediad_rate_limited_total", Help: "Requests refused by a rate limit."})
	m.limiterErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "mediad_rate_limiter_errors_total", Help: "Rate-limit decisions that failed (Redis down); served unless RATE_LIMIT_FAIL_CLOSED."})
	m.registry.MustRegister(m.requests, m.duration, m.uploads, m.bytes, m.limited, m.limiterErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
