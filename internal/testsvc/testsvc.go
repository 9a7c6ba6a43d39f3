// Package testsvc starts real backing services for tests: PostgreSQL,
// redis-server and versitygw (an S3-compatible gateway). There are no fakes:
// every helper runs the real binary on a free 127.0.0.1 port in a temporary
// directory and stops it again when the test (or, for PostgreSQL, the test
// binary) is done.
//
// A test package that uses this package must call [Main] from its TestMain:
//
//	func TestMain(m *testing.M) { testsvc.Main(m) }
//
// A missing binary is a test failure, never a skip; install the binaries with
// `make test-deps`.
//
// The binaries are looked up as follows:
//   - PostgreSQL (initdb, pg_ctl, postgres): the directory of pg_ctl found in
//     $PATH, then /usr/lib/postgresql/*/bin (newest version first), then a few
//     other usual install locations.
//   - redis-server: $PATH.
//   - versitygw: $PATH, then $GOBIN, then $GOPATH/bin (default $HOME/go/bin),
//     then whatever `go env GOBIN GOPATH` reports.
//
// When the tests run as root, PostgreSQL (which refuses to run as root) is run
// as the "postgres" OS user; everything else runs as the current user.
package testsvc

import (
	"bufio"
	"bytes"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 20 * time.Second

// installHint is appended to every "binary not found" failure.
const installHint = "install the test dependencies with `make test-deps`"

// mainRunning is set by Main; Postgres insists on it so that the shared
// server is guaranteed to be stopped at the end of the test binary.
var mainRunning atomic.Bool

// Main runs the tests of a package that uses testsvc and then stops the
// shared PostgreSQL server (if one was started) and removes its directory.
// Call it from TestMain:
//
//	func TestMain(m *testing.M) { testsvc.Main(m) }
//
// Per-test servers (Redis, S3) are stopped by their tests' t.Cleanup; Main is
// only needed for the shared PostgreSQL server, but Postgres refuses to run
// without it.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	if err := stopSharedPostgres(); err != nil {
		fmt.Fprintf(os.Stderr, "testsvc: stopping the shared PostgreSQL server: %v\n", err)
	}
	mainRunning.Store(false)
	os.Exit(code)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	return port, nil
}

// proc is a running server process whose stdout and stderr go to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // result of cmd.Wait; valid after done is closed
}

type procOpts struct {
	dir      string              // working directory
	env      []string            // full environment
	logPath  string              // stdout+stderr are appended here
	cred     *syscall.Credential // run as this user (nil: current user)
	deathSig syscall.Signal      // sent to the process when the test binary dies (Linux)
}

// startProc starts bin with args. The process is reaped in the background.
func startProc(bin string, args []string, o procOpts) (*proc, error) {
	logf, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy of the descriptor
	fmt.Fprintf(logf, "==== testsvc %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = o.dir
	cmd.Env = o.env
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr(o.cred, o.deathSig)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &proc{name: filepath.Base(bin), cmd: cmd, logPath: o.logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process (if it still runs) and waits for it to exit.
func (p *proc) signal(sig os.Signal, timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) did not exit within %v of %v", p.name, p.cmd.Process.Pid, timeout, sig)
	}
}

// kill SIGKILLs the process and waits until it has been reaped.
func (p *proc) kill() error {
	return p.signal(os.Kill, 10*time.Second)
}

// waitReady polls probe until it succeeds, the process exits, or
// startTimeout passes.
func (p *proc) waitReady(probe func() error) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("%s exited before it became ready (%v)", p.name, p.waitErr)
		}
		if lastErr = probe(); lastErr == nil {
			if p.exited() { // answered by someone else on the port?
				return fmt.Errorf("%s exited before it became ready (%v)", p.name, p.waitErr)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v", p.name, startTimeout, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addrInUse reports whether the log says the server could not bind its port
// (the port we picked was taken in the meantime), in which case starting over
// on another port is worth it.
func (p *proc) addrInUse() bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && bytes.Contains(bytes.ToLower(b), []byte("address already in use"))
}

// logTail returns the last lines of a log file, for failure messages.
func logTail(path string) string {
	const maxBytes = 4096
	const maxLines = 40
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		if _, err := f.Seek(fi.Size()-maxBytes, io.SeekStart); err != nil {
			return fmt.Sprintf("(reading log: %v)", err)
		}
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, maxBytes+1), maxBytes+1)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	if len(lines) == 0 {
		return "(log is empty)"
	}
	return "--- " + path + " (tail) ---\n" + strings.Join(lines, "\n") + "\n---"
}

// baseEnv returns a minimal environment for child processes, so that
// settings of the developer's shell (PGPORT, VGW_PORT, ROOT_ACCESS_KEY, …)
// cannot change how the servers run.
func baseEnv(extra ...string) []string {
	env := []string{"LANG=C", "LC_ALL=C"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// isExecutable reports whether path is a regular file with an execute bit.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// pidFile, in each temp dir, holds the pid of the test binary that made it.
const pidFile = "testsvc.pid"

var sweepOnce sync.Once

// newTempDir makes a temp dir for a server in base (os.TempDir() if empty)
// and records the test binary's pid in it. The first call also removes the
// temp dirs left behind by test binaries that died without cleaning up (a
// panic, a -timeout, a SIGKILL: their servers died with them, see
// sysProcAttr, but the directories stay).
func newTempDir(base, prefix string) (string, error) {
	sweepOnce.Do(sweepStaleDirs)
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepStaleDirs removes testsvc temp dirs whose test binary is gone.
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "testsvc-*"))
	if os.TempDir() != "/tmp" {
		more, _ := filepath.Glob("/tmp/testsvc-pg-*") // see startPostgres
		dirs = append(dirs, more...)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, pidFile))
		if err != nil {
			continue // not ours, or just being made
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// removeDir removes a temporary directory, reporting failures via t.Logf.
func removeDir(t testing.TB, dir string) {
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("testsvc: removing %s: %v", dir, err)
	}
}
