package app

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/logicspike/mediad/internal/ratelimit"
)

// RateLimits is what the rate-limit middleware needs.
type RateLimits struct {
	Limiter    ratelimit.Limiter
	Requests   ratelimit.Limit // every authenticated request, per user
	Uploads    ratelimit.Limit // uploads, per user, on top of Requests
	FailClosed bool            // when the limiter fails: 503 instead of serving
}

// limiterTimeout bounds one decision: a slow Redis must not hold requests.
const limiterTimeout = 250 * time.Millisecond

// rateLimit decides before the handler runs (so before any body is read):
// the per-user request budget, then, for uploads, the upload budget. Every
// limited response carries RateLimit-* headers of the tightest budget; a
// refusal is 429 with Retry-After. When the limiter fails the request is
// served (logged and counted) unless FailClosed.
func rateLimit(rl RateLimits, log *slog.Logger, m *metrics, upload bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := actorOf(r).UserID
		type budget struct {
			key   string
			limit ratelimit.Limit
		}
		checks := []budget{{"req:" + user, rl.Requests}}
		if upload {
			checks = append(checks, budget{"upload:" + user, rl.Uploads})
		}
		var shown *ratelimit.Decision
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), limiterTimeout)
			d, err := rl.Limiter.Allow(ctx, c.key, c.limit)
			cancel()
			if err != nil {
				m.limiterErrors.Inc()
				if rl.FailClosed {
					log.ErrorContext(r.Context(), "rate limiter failed: refusing (RATE_LIMIT_FAIL_CLOSED)", "err", err)
					writeProblem(w, problem{Status: http.StatusServiceUnavailable, Code: "unavailable", Detail: "rate limiter unavailable"})
					return
				}
				log.WarnContext(r.Context(), "rate limiter failed: serving without a limit", "err", err)
				continue
			}
			if shown == nil || d.Remaining < shown.Remaining || !d.Allowed {
				shown = &d
			}
			if !d.Allowed {
				break
			}
		}
		if shown != nil {
			h := w.Header()
			h.Set("RateLimit-Limit", strconv.Itoa(shown.Limit))
			h.Set("RateLimit-Remaining", strconv.Itoa(max(shown.Remaining, 0)))
			h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(shown.ResetAfter)))
			if !shown.Allowed {
				m.limited.Inc()
				h.Set("Retry-After", strconv.Itoa(max(ceilSeconds(shown.RetryAfter), 1)))
				writeProblem(w, problem{Status: http.StatusTooManyRequests, Code: "rate_limited", Detail: "too many requests: retry after the time in Retry-After"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}
