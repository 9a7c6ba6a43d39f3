package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocalRefusesOverLimit(t *testing.T) {
	clock := newFakeClock(time.Now())
	lim := newLocal(clock.Now)
	l := PerMinute(5)

	d := checkBurst(t, lim, "user:1", l)
	if d.RetryAfter < 11*time.Second || d.ResetAfter < 59*time.Second {
		t.Errorf("refusal: %+v, want RetryAfter ≈ 12s, ResetAfter ≈ 60s", d)
	}
	checkBurst(t, lim, "user:2", l) // independent keys

	// One request comes back every 12 s.
	clock.Advance(12 * time.Second)
	if d := mustAllow(t, lim, "user:1", l); !d.Allowed || d.Remaining != 0 {
		t.Errorf("12s later: %+v, want allowed, 0 left", d)
	}
	if d := mustAllow(t, lim, "user:1", l); d.Allowed {
		t.Errorf("12s later, second call: %+v, want refused", d)
	}
	clock.Advance(time.Minute)
	checkBurst(t, lim, "user:1", l)
}

// TestLocalConcurrent hammers one shared key and many own keys from many
// goroutines, with the clock stopped (so the counts are exact) and then with
// the real clock (for the race detector, sweeps included).
func TestLocalConcurrent(t *testing.T) {
	clock := newFakeClock(time.Now())
	lim := newLocal(clock.Now)
	// A quarter second per request: with the clock stopped every call is at
	// the same instant, and only with a binary-fraction emission interval
	// does the script's float arithmetic let exactly Burst calls through
	// (with 100/minute, it may let 99 through; see Decision.Remaining).
	shared := Limit{Rate: 128, Burst: 128, Period: 32 * time.Second}
	own := PerMinute(10)

	const workers, calls = 16, 300
	var sharedAllowed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ownAllowed := 0
			for i := range calls {
				d, err := lim.Allow(context.Background(), "shared", shared)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					sharedAllowed.Add(1)
				}
				d, err = lim.Allow(context.Background(), fmt.Sprintf("own:%d:%d", w, i%20), own)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					ownAllowed++
				}
			}
			if ownAllowed != 20*own.Burst {
				t.Errorf("worker %d: %d allowed on its 20 keys, want %d", w, ownAllowed, 20*own.Burst)
			}
		})
	}
	wg.Wait()
	if got := sharedAllowed.Load(); got != int64(shared.Burst) {
		t.Errorf("shared key: %d allowed by %d goroutines, want exactly %d", got, workers, shared.Burst)
	}

	// Real clock, many keys, short period: buckets refill and get swept
	// while other goroutines use them.
	real := NewLocal()
	fast := Limit{Rate: 50, Burst: 5, Period: 10 * time.Millisecond}
	for w := range workers {
		wg.Go(func() {
			for i := range 5000 {
				if _, err := real.Allow(context.Background(), fmt.Sprintf("k%d", (w*7919+i)%3000), fast); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestLocalMemoryBounded fills the limiter with many distinct keys, lets
// their buckets refill, and checks that further use forgets them and gives
// the memory back.
func TestLocalMemoryBounded(t *testing.T) {
	clock := newFakeClock(time.Now())
	lim := newLocal(clock.Now)
	l := PerMinute(10)
	ctx := context.Background()

	base := heapAlloc()
	const many = 200_000
	for i := range many {
		if d, _ := lim.Allow(ctx, fmt.Sprintf("user:%d", i), l); !d.Allowed {
			t.Fatalf("fresh key %d refused", i)
		}
		clock.Advance(10 * time.Microsecond) // 2 s in all: all still live (6 s per token)
	}
	if n := lim.len(); n != many {
		t.Fatalf("%d keys held with none refilled yet, want %d", n, many)
	}
	peak := heapAlloc()

	// Every bucket is full again a minute later; ordinary traffic on a
	// thousand other keys sweeps them away.
	clock.Advance(time.Minute)
	const active = 1000
	for i := range 500 * active {
		if _, err := lim.Allow(ctx, fmt.Sprintf("active:%d", i%active), l); err != nil {
			t.Fatal(err)
		}
		if i%active == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	n := lim.len()
	after := heapAlloc()
	t.Logf("heap: %d KiB before, %d KiB with %d keys, %d KiB after the sweep with %d keys",
		base>>10, peak>>10, many, after>>10, n)
	if n > active {
		t.Errorf("%d keys held after the old buckets refilled, want at most the %d active ones", n, active)
	}
	if peak < base+5<<20 {
		t.Fatalf("heap grew by only %d KiB for %d keys: cannot judge the release", (peak-base)>>10, many)
	}
	if after > base+2<<20 {
		t.Errorf("heap %d KiB after the sweep, %d KiB before the keys: memory not given back", after>>10, base>>10)
	}

	// The forgotten keys start over with a full bucket, as in Redis.
	checkBurst(t, lim, "user:1", l)
}

func TestLocalSweepKeepsLiveBuckets(t *testing.T) {
	clock := newFakeClock(time.Now())
	lim := newLocal(clock.Now)
	l := PerMinute(3)
	ctx := context.Background()

	checkBurst(t, lim, "busy", l)
	// Enough traffic on other keys to sweep every shard several times while
	// "busy" is still empty.
	for i := range 64 * sweepMin * 4 {
		if _, err := lim.Allow(ctx, fmt.Sprintf("other:%d", i%5000), l); err != nil {
			t.Fatal(err)
		}
	}
	if d := mustAllow(t, lim, "busy", l); d.Allowed {
		t.Errorf("busy key after sweeps: %+v, want still refused", d)
	}
}
