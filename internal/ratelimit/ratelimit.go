// Package ratelimit limits how many requests (and uploads) each user of
// mediad may make per period, with the generic cell rate algorithm (GCRA) of
// github.com/go-redis/redis_rate/v10.
//
// Two implementations share one interface and give the same decisions:
//
//   - [NewRedis] keeps the buckets in Redis (one Lua script call per
//     decision), so every mediad process on that Redis shares one budget per
//     key;
//   - [NewLocal] keeps them in process memory, for a single instance or as a
//     fallback, with exactly the same arithmetic.
//
// A decision carries what the RateLimit-Limit, RateLimit-Remaining,
// RateLimit-Reset and Retry-After response headers need; writing them, and
// choosing to fail open or closed when Redis is unavailable, is up to the
// caller.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limit is Rate requests per Period with a burst of Burst (GCRA): a fresh key
// may make Burst requests at once, then one more every Period/Rate.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// PerMinute returns a limit of n requests per minute with a burst of n (the
// same as redis_rate.PerMinute).
func PerMinute(n int) Limit {
	return Limit{Rate: n, Burst: n, Period: time.Minute}
}

// String formats l like redis_rate does: "10 req/m (burst 10)".
func (l Limit) String() string {
	var p string
	switch l.Period {
	case time.Second:
		p = "s"
	case time.Minute:
		p = "m"
	case time.Hour:
		p = "h"
	default:
		p = l.Period.String()
	}
	return fmt.Sprintf("%d req/%s (burst %d)", l.Rate, p, l.Burst)
}

// ErrInvalidLimit is returned (wrapped) by Allow for a limit with a Rate,
// Burst or Period that is not positive. redis_rate does not check them and
// would compute with infinities and NaNs.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

func (l Limit) validate() error {
	if l.Rate <= 0 || l.Burst <= 0 || l.Period <= 0 {
		return fmt.Errorf("%w: %v: Rate, Burst and Period must be positive", ErrInvalidLimit, l)
	}
	return nil
}

// Decision is the outcome of one check, with what the RateLimit-* and
// Retry-After headers need.
type Decision struct {
	// Allowed reports whether the request may go ahead. A refused request
	// does not use up any of the budget.
	Allowed bool

	// Limit is the limit's Rate (for RateLimit-Limit).
	Limit int

	// Remaining is the number of further requests that would be allowed
	// right now (RateLimit-Remaining); 0 when not allowed.
	//
	// As in redis_rate, it is the truncation of a floating-point quotient,
	// so at an exact bucket boundary it can come out one lower than the
	// exact figure. The visible case is the first request of a fresh key:
	// for some limits (PerMinute(7), PerMinute(100), 5 per second, …) it
	// reports Burst-2 instead of Burst-1, for others (PerMinute(10),
	// PerMinute(60), …) Burst-1. The same rounding means a burst of
	// requests at the very same microsecond (possible with NewLocal only)
	// can get one fewer than Burst through.
	Remaining int

	// RetryAfter is, when not allowed, how long to wait until the next
	// request would be allowed (Retry-After, rounded up to whole seconds).
	// It is -1 when allowed (as in redis_rate).
	RetryAfter time.Duration

	// ResetAfter is how long until the bucket is full again, i.e. until
	// Remaining would be Burst (RateLimit-Reset, rounded up to whole
	// seconds).
	ResetAfter time.Duration
}

// Limiter decides one request for one key.
//
// Keys are opaque strings chosen by the caller, e.g. "req:"+userID and
// "upload:"+userID for two separate budgets of the same user. Passing
// different limits for the same key mixes the two budgets; use one limit per
// key.
type Limiter interface {
	// Allow decides one request for key under l and records it if allowed.
	// The Redis limiter does this in one round trip (two, once per Redis
	// server start, when the script must be sent in full after NOSCRIPT).
	//
	// It returns an error, and a zero Decision, if l is invalid
	// ([ErrInvalidLimit]) or if Redis cannot be reached in time; it is up to
	// the caller to fail open or closed then.
	Allow(ctx context.Context, key string, l Limit) (Decision, error)
}
