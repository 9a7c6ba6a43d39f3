package ratelimit

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/logicspike/mediad/internal/testsvc"
)

// benchKeys are the keys the benchmarks cycle through (1000 users).
var benchKeys = func() []string {
	k := make([]string, 1000)
	for i := range k {
		k[i] = "bench:user:" + strconv.Itoa(i)
	}
	return k
}()

// benchLimit never refuses during a benchmark, so that every call takes the
// script's write path (GET and SET), the slower one.
var benchLimit = PerMinute(1 << 30)

// benchDecisions times each decision and reports the median and 99th
// percentile latency, in milliseconds, as p50-ms and p99-ms.
func benchDecisions(b *testing.B, lim Limiter) {
	ctx := context.Background()
	// Warm up: connections, script cache.
	for i := range 100 {
		if _, err := lim.Allow(ctx, benchKeys[i%len(benchKeys)], benchLimit); err != nil {
			b.Fatal(err)
		}
	}
	durs := make([]time.Duration, 0, 1<<16)
	i := 0
	for b.Loop() {
		start := time.Now()
		d, err := lim.Allow(ctx, benchKeys[i%len(benchKeys)], benchLimit)
		durs = append(durs, time.Since(start))
		if err != nil || !d.Allowed {
			b.Fatalf("Allow: %+v, %v", d, err)
		}
		i++
	}
	slices.Sort(durs)
	pct := func(p float64) float64 {
		return float64(durs[int(p*float64(len(durs)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkRedisAllow measures one decision by NewRedis against a
// redis-server on loopback, with a client from NewRedisClient, one caller at
// a time.
func BenchmarkRedisAllow(b *testing.B) {
	srv := testsvc.Redis(b)
	rdb := newClient(b, srv.URL)
	benchDecisions(b, NewRedis(rdb))
}

// BenchmarkLocalAllow measures one decision by NewLocal (the p50/p99 figures
// include the cost of reading the clock twice).
func BenchmarkLocalAllow(b *testing.B) {
	benchDecisions(b, NewLocal())
}

// BenchmarkLocalAllowParallel measures NewLocal under contention from
// GOMAXPROCS goroutines.
func BenchmarkLocalAllowParallel(b *testing.B) {
	lim := NewLocal()
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := lim.Allow(ctx, benchKeys[i%len(benchKeys)], benchLimit); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}
