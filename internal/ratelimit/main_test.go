package ratelimit

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/mediad/internal/testsvc"
)

func TestMain(m *testing.M) { testsvc.Main(m) }

// fakeClock is a settable clock for the local limiter, safe for concurrent
// use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newClient returns a client made by NewRedisClient for url, closed at the
// end of the test.
func newClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	rdb, err := NewRedisClient(url)
	if err != nil {
		t.Fatalf("NewRedisClient(%q): %v", url, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
