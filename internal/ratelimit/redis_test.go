package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/logicspike/mediad/internal/testsvc"
)

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustAllow calls lim.Allow with a 2 s deadline and fails the test on error.
func mustAllow(t *testing.T, lim Limiter, key string, l Limit) Decision {
	t.Helper()
	d, err := lim.Allow(ctxTimeout(t, 2*time.Second), key, l)
	if err != nil {
		t.Fatalf("Allow(%q, %v): %v", key, l, err)
	}
	return d
}

// checkBurst makes l.Burst calls that must all be allowed, then one that
// must be refused, and returns the refusal.
func checkBurst(t *testing.T, lim Limiter, key string, l Limit) Decision {
	t.Helper()
	for i := 1; i <= l.Burst; i++ {
		d := mustAllow(t, lim, key, l)
		want := l.Burst - i
		// The first call of a fresh key may report one less (see
		// Decision.Remaining); the others are far from a boundary.
		if !d.Allowed || d.Limit != l.Rate || d.RetryAfter != -1 ||
			!(d.Remaining == want || i == 1 && d.Remaining == want-1) {
			t.Fatalf("call %d of %v on %q: %+v, want allowed, Remaining %d, RetryAfter -1", i, l, key, d, want)
		}
		if d.ResetAfter <= 0 || d.ResetAfter > l.Period*time.Duration(l.Burst)/time.Duration(l.Rate) {
			t.Fatalf("call %d of %v on %q: ResetAfter %v out of range", i, l, key, d.ResetAfter)
		}
	}
	d := mustAllow(t, lim, key, l)
	if d.Allowed || d.Remaining != 0 || d.Limit != l.Rate || d.RetryAfter <= 0 || d.RetryAfter > l.Period/time.Duration(l.Rate) {
		t.Fatalf("call %d of %v on %q: %+v, want refused, Remaining 0, 0 < RetryAfter <= %v",
			l.Burst+1, l, key, d, l.Period/time.Duration(l.Rate))
	}
	return d
}

func TestRedisRefusesOverLimit(t *testing.T) {
	srv := testsvc.Redis(t)
	lim := NewRedis(newClient(t, srv.URL))
	l := PerMinute(5)

	d := checkBurst(t, lim, "user:1", l)
	// The bucket refills one request every 12 s: the next is allowed in
	// just under 12 s, the bucket is full again in just under 60 s.
	if d.RetryAfter < 11*time.Second || d.ResetAfter < 59*time.Second || d.ResetAfter > time.Minute {
		t.Errorf("refusal: %+v, want RetryAfter ≈ 12s, ResetAfter ≈ 60s", d)
	}
	// Refusals do not use up budget: still refused with about the same wait.
	for range 3 {
		d2 := mustAllow(t, lim, "user:1", l)
		if d2.Allowed || d2.RetryAfter > d.RetryAfter {
			t.Fatalf("after a refusal: %+v (first refusal %+v)", d2, d)
		}
	}
}

func TestRedisSharedBudget(t *testing.T) {
	srv := testsvc.Redis(t)
	a := NewRedis(newClient(t, srv.URL))
	b := NewRedis(newClient(t, srv.URL))
	l := PerMinute(6)

	var allowed, refusedA, refusedB int
	for i := range 10 {
		lim, refused := a, &refusedA
		if i%2 == 1 {
			lim, refused = b, &refusedB
		}
		d := mustAllow(t, lim, "user:shared", l)
		if d.Allowed {
			allowed++
			if allowed != i+1 {
				t.Fatalf("call %d allowed after a refusal: %+v", i+1, d)
			}
		} else {
			*refused++
		}
	}
	if allowed != 6 || refusedA != 2 || refusedB != 2 {
		t.Errorf("two limiters on two clients: %d allowed, %d+%d refused; want 6 allowed in all (one budget), 2+2 refused",
			allowed, refusedA, refusedB)
	}
}

func TestRedisKeysIndependent(t *testing.T) {
	srv := testsvc.Redis(t)
	lim := NewRedis(newClient(t, srv.URL))
	l := PerMinute(3)

	checkBurst(t, lim, "user:a", l)
	checkBurst(t, lim, "user:b", l) // a full bucket of its own
	// The same user under another key (another budget, e.g. uploads).
	checkBurst(t, lim, "upload:user:a", Limit{Rate: 2, Burst: 2, Period: time.Minute})
	if d := mustAllow(t, lim, "user:a", l); d.Allowed {
		t.Errorf("user:a after its burst and others' calls: %+v, want refused", d)
	}
}

func TestRedisDownAndRestart(t *testing.T) {
	srv := testsvc.Redis(t)
	lim := NewRedis(newClient(t, srv.URL))
	l := PerMinute(10)

	for range 3 {
		mustAllow(t, lim, "user:1", l)
	}

	srv.Stop()
	// As the caller does: a short deadline; and with no deadline at all, the
	// client's own timeouts must do.
	for i, ctx := range []context.Context{
		ctxTimeout(t, 500*time.Millisecond), context.Background(), ctxTimeout(t, time.Second),
		context.Background(), context.Background(),
	} {
		start := time.Now()
		d, err := lim.Allow(ctx, "user:1", l)
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("call %d with Redis stopped: no error (%+v)", i+1, d)
		}
		if d != (Decision{}) {
			t.Errorf("call %d with Redis stopped: Decision %+v along with the error, want zero", i+1, d)
		}
		if elapsed > time.Second {
			t.Errorf("call %d with Redis stopped took %v, want < 1s (err %v)", i+1, elapsed, err)
		}
		t.Logf("Redis stopped: call %d failed in %v: %v", i+1, elapsed, err)
	}

	srv.Start(t)
	// Working again without a new client. The pool may still be in its
	// "dial errors" state, in which go-redis probes the server once a
	// second, so allow a little time.
	start := time.Now()
	var d Decision
	for {
		var err error
		d, err = lim.Allow(ctxTimeout(t, 500*time.Millisecond), "user:1", l)
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Redis restarted 5s ago, Allow still fails: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("Redis restarted: working again after %v", time.Since(start))
	// The restarted server has an empty dataset: a full bucket again.
	if !d.Allowed || d.Remaining < l.Burst-2 {
		t.Errorf("first call after the restart: %+v, want allowed with a full bucket", d)
	}
	checkBurst(t, lim, "user:2", l)
}

func TestInvalidLimit(t *testing.T) {
	srv := testsvc.Redis(t)
	for name, lim := range map[string]Limiter{"redis": NewRedis(newClient(t, srv.URL)), "local": NewLocal()} {
		for _, l := range []Limit{{}, {Rate: 0, Burst: 1, Period: time.Second}, {Rate: 1, Burst: 0, Period: time.Second},
			{Rate: 1, Burst: 1, Period: 0}, {Rate: -1, Burst: 1, Period: time.Second}} {
			d, err := lim.Allow(context.Background(), "k", l)
			if !errors.Is(err, ErrInvalidLimit) || d != (Decision{}) {
				t.Errorf("%s: Allow(%+v) = %+v, %v; want ErrInvalidLimit", name, l, d, err)
			}
		}
	}
}

func TestNewRedisClient(t *testing.T) {
	rdb, err := NewRedisClient("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	o := rdb.Options()
	if o.DialTimeout != DefaultDialTimeout || o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout ||
		o.PoolTimeout != DefaultPoolTimeout || o.PoolSize != DefaultPoolSize() || o.MaxRetries != DefaultMaxRetries ||
		o.DialerRetries != DefaultDialerRetries || o.MinIdleConns != DefaultMinIdleConns || !o.ContextTimeoutEnabled {
		t.Errorf("defaults not applied: %+v", o)
	}

	// What the URL says wins.
	rdb2, err := NewRedisClient("redis://127.0.0.1:1/2?dial_timeout=1s&read_timeout=3s&pool_size=7&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb2.Close()
	o = rdb2.Options()
	if o.DB != 2 || o.DialTimeout != time.Second || o.ReadTimeout != 3*time.Second || o.PoolSize != 7 || o.MaxRetries != 0 ||
		o.WriteTimeout != DefaultWriteTimeout {
		t.Errorf("URL options overridden: %+v", o)
	}

	if _, err := NewRedisClient("http://example.com"); err == nil {
		t.Error("NewRedisClient(http URL): no error")
	}
}
