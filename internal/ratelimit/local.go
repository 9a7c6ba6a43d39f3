package ratelimit

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"
	"time"
)

// NewLocal returns a Limiter that keeps its buckets in process memory. It
// makes the same decisions as [NewRedis] for the same sequence of calls at
// the same instants: it is a transcription of redis_rate v10's Lua script,
// down to its float64 arithmetic, the microsecond clock, the integer
// truncation of Remaining and the 14-significant-digit rounding of
// RetryAfter and ResetAfter (Lua's tostring). It uses the wall clock, as
// Redis's TIME does.
//
// It is safe for concurrent use. Memory stays bounded: a key is forgotten
// once its bucket is full again (as the Redis key expires), by a sweep of
// each of its 64 shards that runs, lazily, after as many calls to the shard
// as it holds keys (at least 1024), so the amortized cost per call is
// constant and a shard holds at most about twice the keys that are not full
// yet (plus 1024). There is no goroutine and nothing to stop; memory is
// given back on the next calls after the buckets have refilled.
func NewLocal() Limiter {
	return newLocal(time.Now)
}

const (
	numShards = 64   // power of two
	sweepMin  = 1024 // calls to a shard between sweeps, at least
)

type localLimiter struct {
	now    func() time.Time // injectable for tests
	seed   maphash.Seed
	shards [numShards]shard
}

type shard struct {
	mu    sync.Mutex
	tats  map[string]float64 // key → theoretical arrival time, as in Redis
	calls int                // calls since the last sweep
	_     [40]byte           // keep shards on separate cache lines
}

func newLocal(now func() time.Time) *localLimiter {
	l := &localLimiter{now: now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].tats = make(map[string]float64)
	}
	return l
}

func (l *localLimiter) Allow(_ context.Context, key string, lim Limit) (Decision, error) {
	if err := lim.validate(); err != nil {
		return Decision{}, err
	}
	s := &l.shards[maphash.String(l.seed, key)&(numShards-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := redisNow(l.now())
	tat, ok := s.tats[key]
	d, newTat, store := gcra(lim, now, tat, ok)
	if store {
		s.tats[key] = newTat
	}
	s.calls++
	if s.calls >= sweepMin && s.calls >= len(s.tats) {
		s.sweep(now)
	}
	return d, nil
}

// sweep forgets the keys whose bucket is full again (tat <= now: the Redis
// key would have expired, and the script treats a missing key and such a tat
// alike). It copies the survivors to a new map, because a Go map does not
// give back memory when entries are deleted.
func (s *shard) sweep(now float64) {
	live := 0
	for _, tat := range s.tats {
		if tat > now {
			live++
		}
	}
	if live < len(s.tats) {
		m := make(map[string]float64, live)
		for k, tat := range s.tats {
			if tat > now {
				m[k] = tat
			}
		}
		s.tats = m
	}
	s.calls = 0
}

// len returns the number of keys held (for tests).
func (l *localLimiter) len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// jan2017 is the epoch of the script's clock (Jan 1, 2017 00:00:00 UTC),
// which keeps its float64 seconds precise to well below a microsecond.
const jan2017 = 1483228800

// redisNow converts t the way the script converts Redis's TIME (whole
// seconds and microseconds): (now[1] - jan_1_2017) + (now[2] / 1000000).
func redisNow(t time.Time) float64 {
	sec := t.Unix() - jan2017
	usec := t.Nanosecond() / 1000
	return float64(sec) + float64(usec)/1000000
}

// gcra is one call of redis_rate v10's allowN script with cost 1, at time
// now (seconds since jan2017), for a key whose stored value is tat (ok is
// false when there is none). It returns the decision and, if store, the new
// tat to keep (the script SETs it). Each step below is a line of the script;
// Lua numbers are float64 and every operation is rounded on its own, hence
// the float64(…) conversions, which stop the compiler from fusing a multiply
// and an add into one FMA instruction (as it may on arm64, ppc64 and s390x).
func gcra(l Limit, now, tat float64, ok bool) (d Decision, newTat float64, store bool) {
	burst := float64(l.Burst)
	rate := float64(l.Rate)
	period := l.Period.Seconds() // go-redis sends it with strconv 'f', -1: exact
	const cost = 1

	emissionInterval := period / rate
	increment := float64(emissionInterval * cost)
	burstOffset := float64(emissionInterval * burst)

	if !ok {
		tat = now
	}
	if now > tat { // math.max(tat, now)
		tat = now
	}

	newTat = tat + increment
	allowAt := newTat - burstOffset

	diff := now - allowAt
	remaining := diff / emissionInterval

	if remaining < 0 {
		resetAfter := tat - now
		retryAfter := diff * -1
		return Decision{
			Allowed:    false,
			Limit:      l.Rate,
			Remaining:  0,
			RetryAfter: luaDur(retryAfter),
			ResetAfter: luaDur(resetAfter),
		}, 0, false
	}

	resetAfter := newTat - now
	store = resetAfter > 0
	return Decision{
		Allowed: true,
		Limit:   l.Rate,
		// Redis converts a Lua number reply to an integer by a C cast
		// (truncation toward zero).
		Remaining:  int(remaining),
		RetryAfter: -1,
		ResetAfter: luaDur(resetAfter),
	}, newTat, store
}

// luaDur turns seconds into a Duration the way the value travels from the
// script to redis_rate's Result: tostring (Lua 5.1's "%.14g"), then
// strconv.ParseFloat, then redis_rate's dur (truncating f*1e9).
func luaDur(f float64) time.Duration {
	f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', 14, 64), 64)
	if f == -1 {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}
