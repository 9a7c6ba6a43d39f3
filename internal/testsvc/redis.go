package testsvc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server of a test's own, started by [Redis].
type RedisServer struct {
	// Addr is the server's host:port (on 127.0.0.1).
	Addr string
	// URL is redis://Addr/0, for redis.ParseURL.
	URL string

	bin  string
	dir  string
	port int

	mu     sync.Mutex // guards proc and closed
	proc   *proc      // nil while stopped
	closed bool       // set by the test's cleanup
}

// Redis starts a redis-server of the test's own on a free 127.0.0.1 port
// (--bind 127.0.0.1, no persistence: --save "" --appendonly no) in a
// temporary directory. t.Cleanup kills it and removes the directory.
// The server's output goes to redis.log in that directory and is shown
// when it fails to start.
//
// It fails the test if redis-server is not in $PATH (run `make test-deps`).
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testsvc.Redis: redis-server not found in $PATH (%v); %s", err, installHint)
	}
	dir, err := newTempDir("", "testsvc-redis-")
	if err != nil {
		t.Fatalf("testsvc.Redis: %v", err)
	}
	r := &RedisServer{bin: bin, dir: dir}
	t.Cleanup(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.Stop()
		removeDir(t, dir)
	})

	for attempt := 1; ; attempt++ {
		if r.port, err = freePort(); err != nil {
			t.Fatalf("testsvc.Redis: %v", err)
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
		r.URL = "redis://" + r.Addr + "/0"
		inUse, err := r.start()
		if err == nil {
			return r
		}
		if !inUse || attempt == 3 {
			t.Fatalf("testsvc.Redis: %v\n%s", err, logTail(r.logPath()))
		}
	}
}

// Stop kills the server (SIGKILL) and waits until it is gone, so that the
// port refuses connections: use it to test Redis outages. Stopping a stopped
// server does nothing.
func (r *RedisServer) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	if err := r.proc.kill(); err != nil {
		// Cannot happen short of a kernel problem; nothing better to do.
		fmt.Fprintf(os.Stderr, "testsvc: stopping redis-server: %v\n", err)
	}
	r.proc = nil
}

// Start starts a stopped server again on the same port (with an empty
// dataset: there is no persistence) and waits until it answers. Starting a
// running server does nothing. t is used to report failures only; the server
// still belongs to the test that called [Redis].
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	running, closed := r.proc != nil, r.closed
	r.mu.Unlock()
	if closed {
		t.Fatalf("testsvc: RedisServer.Start after the test that created it has finished")
	}
	if running {
		return
	}
	if _, err := r.start(); err != nil {
		t.Fatalf("testsvc: restarting redis-server on %s: %v\n%s", r.Addr, err, logTail(r.logPath()))
	}
}

func (r *RedisServer) logPath() string { return filepath.Join(r.dir, "redis.log") }

// start runs redis-server on r.port and waits for it; inUse reports a
// failure to bind the port.
func (r *RedisServer) start() (inUse bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := startProc(r.bin, []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--daemonize", "no",
		"--logfile", "", // stdout, i.e. redis.log
	}, procOpts{dir: r.dir, env: baseEnv(), logPath: r.logPath(), deathSig: syscall.SIGKILL})
	if err != nil {
		return false, err
	}
	if err := p.waitReady(func() error { return redisProbe(r.Addr, p.cmd.Process.Pid) }); err != nil {
		inUse = p.addrInUse()
		_ = p.kill()
		return inUse, err
	}
	r.proc = p
	return false, nil
}

// redisProbe asks the server at addr for INFO server and checks that it is
// the process pid (and not another redis that took the port meanwhile).
func redisProbe(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "INFO server\r\n"); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	head, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") {
		return fmt.Errorf("INFO server: unexpected reply %q", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return fmt.Errorf("INFO server: unexpected reply %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if v != strconv.Itoa(pid) {
				return fmt.Errorf("port is served by another redis-server (pid %s, want %d)", v, pid)
			}
			return nil
		}
	}
	return errors.New("INFO server: no process_id")
}
