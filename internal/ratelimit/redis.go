package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Recommended client options for the limiter, applied by [NewRedisClient] to
// every option the URL leaves unset. A rate-limit check sits in front of every
// request, so a Redis that is down or stuck must cost milliseconds, not the
// go-redis defaults (5 s timeouts, 3 command retries with up to 1 s backoff,
// 5 dial attempts 100 ms apart per connection).
const (
	// DefaultDialTimeout bounds one TCP connect.
	DefaultDialTimeout = 200 * time.Millisecond
	// DefaultReadTimeout bounds waiting for a reply (the script itself runs
	// in microseconds); DefaultWriteTimeout bounds sending the command.
	DefaultReadTimeout  = 200 * time.Millisecond
	DefaultWriteTimeout = 200 * time.Millisecond
	// DefaultPoolTimeout bounds waiting for a free connection when all
	// PoolSize connections are busy.
	DefaultPoolTimeout = 200 * time.Millisecond
	// DefaultMaxRetries is one retry, enough to get past a connection that
	// died with a Redis restart. A retry after a lost reply can count one
	// request twice; that errs on the strict side.
	DefaultMaxRetries      = 1
	DefaultMinRetryBackoff = 2 * time.Millisecond
	DefaultMaxRetryBackoff = 20 * time.Millisecond
	// DefaultDialerRetries is one dial attempt per new connection (go-redis
	// makes 5, 100 ms apart, by default).
	DefaultDialerRetries = 1
	// DefaultMinIdleConns keeps a couple of connections open so that the
	// first requests after a quiet period do not pay for a connect and the
	// HELLO handshake.
	DefaultMinIdleConns = 2
)

// DefaultPoolSize is the connection pool size set by [NewRedisClient]: 10 per
// CPU, the go-redis default, written out so that it is a deliberate choice.
// Every in-flight request holds a connection for one round trip (well under a
// millisecond on a LAN), so this serves thousands of requests per second per
// CPU; beyond it, callers wait up to DefaultPoolTimeout.
func DefaultPoolSize() int { return 10 * runtime.GOMAXPROCS(0) }

// NewRedisClient parses a Redis URL (REDIS_URL; see [redis.ParseURL] for the
// format and the query parameters it accepts, e.g.
// redis://:password@host:6379/0?dial_timeout=100ms&pool_size=50) and returns
// a client configured for rate limiting. Every option the URL leaves unset
// gets the recommended value:
//
//	DialTimeout           200ms  (DefaultDialTimeout)
//	ReadTimeout           200ms  (DefaultReadTimeout)
//	WriteTimeout          200ms  (DefaultWriteTimeout)
//	PoolTimeout           200ms  (DefaultPoolTimeout)
//	PoolSize              10 × GOMAXPROCS (DefaultPoolSize)
//	MinIdleConns          2      (DefaultMinIdleConns)
//	MaxRetries            1      (DefaultMaxRetries), backoff 2ms–20ms
//	DialerRetries         1      (DefaultDialerRetries)
//	ContextTimeoutEnabled true   (the caller's ctx deadline also bounds socket I/O)
//
// With these, a stopped Redis (connection refused) fails a call within a few
// milliseconds, and an unreachable one (packets dropped) within about
// 2 × (DialTimeout + backoff), about half a second; a ctx deadline, which the
// caller should set anyway, cuts either shorter. The client does not connect
// until first used. Close it when done.
func NewRedisClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: parsing Redis URL: %w", err)
	}
	setDefaults(opt)
	return redis.NewClient(opt), nil
}

// setDefaults sets the recommended value of every option left at zero.
func setDefaults(opt *redis.Options) {
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur(&opt.DialTimeout, DefaultDialTimeout)
	setDur(&opt.ReadTimeout, DefaultReadTimeout)
	setDur(&opt.WriteTimeout, DefaultWriteTimeout)
	setDur(&opt.PoolTimeout, DefaultPoolTimeout)
	setInt(&opt.PoolSize, DefaultPoolSize())
	setInt(&opt.MinIdleConns, DefaultMinIdleConns)
	setInt(&opt.MaxRetries, DefaultMaxRetries)
	setDur(&opt.MinRetryBackoff, DefaultMinRetryBackoff)
	setDur(&opt.MaxRetryBackoff, DefaultMaxRetryBackoff)
	setInt(&opt.DialerRetries, DefaultDialerRetries)
	opt.ContextTimeoutEnabled = true
}

// NewRedis returns a Limiter that keeps its buckets in Redis with
// redis_rate (GCRA in one Lua script call per decision, under the Redis key
// "rate:"+key), so that every process using that Redis shares one budget per
// key. Build rdb with [NewRedisClient] or with similarly short timeouts.
//
// The buckets live only as long as Redis keeps them: after a restart without
// persistence every key starts with a full bucket.
func NewRedis(rdb redis.UniversalClient) Limiter {
	return &redisLimiter{rl: redis_rate.NewLimiter(rdb)}
}

type redisLimiter struct {
	rl *redis_rate.Limiter
}

func (r *redisLimiter) Allow(ctx context.Context, key string, l Limit) (Decision, error) {
	if err := l.validate(); err != nil {
		return Decision{}, err
	}
	res, err := r.rl.Allow(ctx, key, redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period})
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return Decision{
		Allowed:    res.Allowed > 0,
		Limit:      l.Rate,
		Remaining:  res.Remaining,
		RetryAfter: res.RetryAfter,
		ResetAfter: res.ResetAfter,
	}, nil
}
