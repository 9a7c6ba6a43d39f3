//go:build unix

package ratelimit

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logicspike/mediad/internal/testsvc"
)

// TestRedisHung freezes the test's own redis-server with SIGSTOP: unlike a
// stopped server, a hung one accepts connections (the kernel does) but never
// answers, so only the client's timeouts and the caller's deadline help.
func TestRedisHung(t *testing.T) {
	srv := testsvc.Redis(t)
	rdb := newClient(t, srv.URL)
	lim := NewRedis(rdb)
	l := PerMinute(10)
	mustAllow(t, lim, "user:1", l)

	info, err := rdb.Info(ctxTimeout(t, 2*time.Second), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid <= 0 {
		t.Fatalf("no process_id in INFO server:\n%s", info)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP redis-server %d: %v", pid, err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT redis-server %d: %v", pid, err)
			}
		}
	}
	t.Cleanup(resume)

	for i, c := range []struct {
		ctx context.Context
		max time.Duration
	}{
		{ctxTimeout(t, 100*time.Millisecond), 300 * time.Millisecond}, // the caller's deadline
		{context.Background(), time.Second},                           // the client's timeouts alone
		{context.Background(), time.Second},
	} {
		start := time.Now()
		d, err := lim.Allow(c.ctx, "user:1", l)
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("call %d with Redis hung: no error (%+v)", i+1, d)
		}
		if elapsed > c.max {
			t.Errorf("call %d with Redis hung took %v, want < %v (err %v)", i+1, elapsed, c.max, err)
		}
		t.Logf("Redis hung: call %d failed in %v: %v", i+1, elapsed, err)
	}

	resume()
	start := time.Now()
	for {
		_, err := lim.Allow(ctxTimeout(t, 500*time.Millisecond), "user:2", l)
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Redis resumed 5s ago, Allow still fails: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("Redis resumed: working again after %v", time.Since(start))
	// The requests that timed out may still have been counted: Redis
	// runs them when it resumes. The bucket keeps its state.
	d := mustAllow(t, lim, "user:1", l)
	t.Logf("user:1 after the hang: %+v", d)
	if !d.Allowed || d.Remaining > l.Burst-2 {
		t.Errorf("user:1 after the hang: %+v, want allowed with the earlier call still counted", d)
	}
}
