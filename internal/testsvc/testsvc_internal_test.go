package testsvc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, like the real one, without failing the enclosing test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Skip(...any)          { panic("testsvc must not skip") }
func (f *fatalRecorder) Skipf(string, ...any) { panic("testsvc must not skip") }
func (f *fatalRecorder) SkipNow()             { panic("testsvc must not skip") }

// runFatal runs fn with a fatalRecorder and returns the Fatalf message.
func runFatal(t *testing.T, fn func(tb testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.msg
}

// A missing binary is a failure that says how to install it, not a skip.
func TestMissingBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())

	check := func(what, msg string) {
		t.Helper()
		if !strings.Contains(msg, "not found") || !strings.Contains(msg, "make test-deps") {
			t.Errorf("%s: failure message %q does not say the binary is missing and to run `make test-deps`", what, msg)
		}
	}
	check("Redis", runFatal(t, func(tb testing.TB) { Redis(tb) }))
	check("S3", runFatal(t, func(tb testing.TB) { S3(tb) }))

	saved := pgBinGlobs
	pgBinGlobs = []string{t.TempDir() + "/*/bin"}
	defer func() { pgBinGlobs = saved }()
	_, err := findPostgresBin()
	if err == nil {
		t.Fatal("findPostgresBin found PostgreSQL with an empty PATH")
	}
	check("Postgres", err.Error())
}

func TestDBName(t *testing.T) {
	long := strings.Repeat("Sub/Test-Ä ", 20)
	for _, name := range []string{"TestX", "TestX/sub_test#01", long} {
		got := dbName(name)
		if len(got) > 63 || !strings.HasPrefix(got, "test_") {
			t.Errorf("dbName(%q) = %q", name, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("dbName(%q) = %q: bad character %q", name, got, r)
			}
		}
	}
	if dbName("TestX") == dbName("TestX") {
		t.Error("dbName is not unique")
	}
}

// A server that dies while starting is reported with its log.
func TestStartFailureShowsLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "x.log")
	p, err := startProc("/bin/sh", []string{"-c", "echo 'bind: Address already in use' >&2; exit 3"},
		procOpts{dir: dir, env: baseEnv(), logPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(func() error { return errors.New("not yet") })
	if err == nil || !strings.Contains(err.Error(), "exited before it became ready") {
		t.Fatalf("waitReady = %v", err)
	}
	if !p.addrInUse() {
		t.Error("addrInUse = false")
	}
	if tail := logTail(logPath); !strings.Contains(tail, "Address already in use") || !strings.Contains(tail, "==== testsvc") {
		t.Errorf("logTail = %q", tail)
	}
}

// Temp dirs of dead test binaries are swept; live ones are kept.
func TestSweepStaleDirs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	mk := func(pid int) string {
		dir, err := os.MkdirTemp("", "testsvc-x-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// A pid that is surely dead: a finished child of ours.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead, live := mk(cmd.Process.Pid), mk(os.Getpid())
	foreign, err := os.MkdirTemp("", "testsvc-x-")
	if err != nil {
		t.Fatal(err)
	}
	sweepStaleDirs()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dir of dead pid not removed: %v", err)
	}
	for _, d := range []string{live, foreign} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}
