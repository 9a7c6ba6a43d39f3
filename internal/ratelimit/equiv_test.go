package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/mediad/internal/testsvc"
)

// TestUpstreamScriptCopy checks that upstreamAllowN is the very script
// NewRedis runs: after one call, Redis must know a script with its SHA-1.
func TestUpstreamScriptCopy(t *testing.T) {
	srv := testsvc.Redis(t)
	rdb := newClient(t, srv.URL)
	ctx := ctxTimeout(t, 5*time.Second)
	sha := redis.NewScript(upstreamAllowN).Hash()
	if ex, err := rdb.ScriptExists(ctx, sha).Result(); err != nil || ex[0] {
		t.Fatalf("SCRIPT EXISTS on a fresh server: %v, %v", ex, err)
	}
	mustAllow(t, NewRedis(rdb), "k", PerMinute(1))
	if ex, err := rdb.ScriptExists(ctx, sha).Result(); err != nil || !ex[0] {
		t.Fatalf("the script NewRedis ran is not upstreamAllowN (SCRIPT EXISTS %s: %v, %v): "+
			"redis_rate changed, update script_test.go and gcra", sha, ex, err)
	}
}

// fixedClockScript is upstreamAllowN with Redis's TIME replaced by ARGV[5]
// (seconds) and ARGV[6] (microseconds), to run the real script in the real
// Redis Lua interpreter at chosen instants.
func fixedClockScript(t *testing.T) *redis.Script {
	const time = `local now = redis.call("TIME")`
	if strings.Count(upstreamAllowN, time) != 1 {
		t.Fatalf("upstreamAllowN has no single %q line", time)
	}
	return redis.NewScript(strings.Replace(upstreamAllowN, time,
		`local now = {tonumber(ARGV[5]), tonumber(ARGV[6])}`, 1))
}

// runScriptAt runs script at instant at and turns its reply into a Decision
// exactly as redis_rate's AllowN and NewRedis do.
func runScriptAt(ctx context.Context, rdb *redis.Client, script *redis.Script, key string, l Limit, at time.Time) (Decision, error) {
	v, err := script.Run(ctx, rdb, []string{"rate:" + key},
		l.Burst, l.Rate, l.Period.Seconds(), 1, at.Unix(), at.Nanosecond()/1000).Result()
	if err != nil {
		return Decision{}, err
	}
	vals := v.([]any)
	retryAfter, err := strconv.ParseFloat(vals[2].(string), 64)
	if err != nil {
		return Decision{}, err
	}
	resetAfter, err := strconv.ParseFloat(vals[3].(string), 64)
	if err != nil {
		return Decision{}, err
	}
	dur := func(f float64) time.Duration { // redis_rate's dur
		if f == -1 {
			return -1
		}
		return time.Duration(f * float64(time.Second))
	}
	return Decision{
		Allowed:    vals[0].(int64) > 0,
		Limit:      l.Rate,
		Remaining:  int(vals[1].(int64)),
		RetryAfter: dur(retryAfter),
		ResetAfter: dur(resetAfter),
	}, nil
}

// TestLocalMatchesScriptExactly runs random call sequences through the
// upstream script in Redis (with the clock as an argument) and through the
// local limiter (with a fake clock) at the same instants, and requires
// identical decisions, field by field.
func TestLocalMatchesScriptExactly(t *testing.T) {
	srv := testsvc.Redis(t)
	rdb := newClient(t, srv.URL)
	script := fixedClockScript(t)
	ctx := ctxTimeout(t, time.Minute)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 42))

	limits := []Limit{
		PerMinute(10),
		PerMinute(7),
		{Rate: 5, Burst: 5, Period: time.Second},
		{Rate: 3, Burst: 7, Period: 2 * time.Second},
		{Rate: 100, Burst: 20, Period: time.Hour},
		{Rate: 7, Burst: 3, Period: 1500 * time.Millisecond},
		{Rate: 1000, Burst: 1000, Period: time.Second},
	}
	var total, allowed, refused, offByOne int
	for li, l := range limits {
		t.Run(l.String(), func(t *testing.T) {
			emission := l.Period / time.Duration(l.Rate)
			start := time.Now().Add(time.Duration(rng.Int64N(int64(time.Hour))))
			clock := newFakeClock(start)
			local := newLocal(clock.Now)
			keys := []string{fmt.Sprintf("l%d:a", li), fmt.Sprintf("l%d:b", li), fmt.Sprintf("l%d:c", li)}
			at := start
			for step := range 400 {
				switch r := rng.IntN(10); {
				case r < 3: // same microsecond
				case r < 6:
					at = at.Add(time.Duration(rng.Int64N(int64(time.Millisecond))))
				case r < 9:
					at = at.Add(time.Duration(rng.Int64N(int64(emission / 2))))
				default:
					at = at.Add(time.Duration(rng.Int64N(int64(l.Period * 3 / 2))))
				}
				key := keys[rng.IntN(len(keys))]
				want, err := runScriptAt(ctx, rdb, script, key, l, at)
				if err != nil {
					t.Fatalf("step %d: script: %v", step, err)
				}
				clock.Set(at)
				got, err := local.Allow(ctx, key, l)
				if err != nil {
					t.Fatalf("step %d: local: %v", step, err)
				}
				if got != want {
					t.Fatalf("step %d (%s at %s): local %+v, Redis script %+v",
						step, key, at.Format(time.RFC3339Nano), got, want)
				}
				total++
				if got.Allowed {
					allowed++
				} else {
					refused++
				}
				if got.Allowed && got.Remaining == l.Burst-2 && (got.ResetAfter-emission).Abs() < 10*time.Microsecond {
					offByOne++ // first call of a fresh bucket reporting one less
				}
			}
		})
	}
	t.Logf("%d identical decisions: %d allowed, %d refused; %d fresh-bucket calls with Remaining = Burst-2",
		total, allowed, refused, offByOne)
	if allowed == 0 || refused == 0 {
		t.Errorf("the sequences do not exercise both outcomes")
	}
}

// TestLocalSameSequenceAsRedis runs one scripted sequence against the real
// NewRedis limiter (real time, with sleeps) and against NewLocal (fake clock
// moved by the same nominal steps). The limit, 4 per second, keeps the
// script's arithmetic exact (a quarter second is a binary fraction), so the
// two must agree on Allowed and Remaining at every step; durations differ
// only by how much the real sleeps and round trips overshoot.
func TestLocalSameSequenceAsRedis(t *testing.T) {
	srv := testsvc.Redis(t)
	remote := NewRedis(newClient(t, srv.URL))
	clock := newFakeClock(time.Now())
	local := newLocal(clock.Now)
	l := Limit{Rate: 4, Burst: 4, Period: time.Second} // one every 250 ms

	// Every instant is at least 100 ms away from a bucket boundary.
	steps := []struct {
		sleep time.Duration // before the call
		calls int
	}{
		{0, 6},                       // 4 allowed (3, 2, 1, 0 left), 2 refused (retry 250 ms)
		{375 * time.Millisecond, 2},  // half a token over one: allowed (0 left), refused (retry 125 ms)
		{1000 * time.Millisecond, 2}, // bucket full again: allowed (3 left), allowed (2 left)
		{125 * time.Millisecond, 1},  // allowed (1.5 → 1 left)
		{250 * time.Millisecond, 3},  // allowed (1 left), allowed (0 left), refused (retry 125 ms)
		{1500 * time.Millisecond, 1}, // full: allowed (3 left)
		{0, 4},                       // allowed (2, 1, 0 left), refused (retry 250 ms)
		{375 * time.Millisecond, 2},  // allowed (0 left), refused (retry 125 ms)
		{10 * time.Millisecond, 1},   // refused (retry 115 ms)
	}
	const tolerance = 60 * time.Millisecond
	ctx := ctxTimeout(t, time.Minute)
	n := 0
	for _, s := range steps {
		if s.sleep > 0 {
			time.Sleep(s.sleep)
			clock.Advance(s.sleep)
		}
		for range s.calls {
			n++
			rd, err := remote.Allow(ctx, "user:seq", l)
			if err != nil {
				t.Fatalf("call %d: redis: %v", n, err)
			}
			ld, err := local.Allow(ctx, "user:seq", l)
			if err != nil {
				t.Fatalf("call %d: local: %v", n, err)
			}
			t.Logf("call %2d: redis %+v", n, rd)
			t.Logf("         local %+v", ld)
			if rd.Allowed != ld.Allowed || rd.Remaining != ld.Remaining || rd.Limit != ld.Limit {
				t.Fatalf("call %d: redis %+v, local %+v", n, rd, ld)
			}
			if d := (rd.RetryAfter - ld.RetryAfter).Abs(); d > tolerance {
				t.Errorf("call %d: RetryAfter redis %v, local %v", n, rd.RetryAfter, ld.RetryAfter)
			}
			if d := (rd.ResetAfter - ld.ResetAfter).Abs(); d > tolerance {
				t.Errorf("call %d: ResetAfter redis %v, local %v", n, rd.ResetAfter, ld.ResetAfter)
			}
		}
	}
}
