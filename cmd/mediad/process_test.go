package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary builds mediad once per test binary, for tests that kill it.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mediad-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mediad")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{err, string(out)}
	}
	return bin, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// process is mediad running as a process of its own, to be killed for real.
type process struct {
	t    *testing.T
	env  map[string]string
	addr string
	cmd  *exec.Cmd
	log  *os.File
}

// startProcess runs the mediad binary with env on a free port (kept across
// restarts).
func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, env: env, addr: ln.Addr().String()}
	ln.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "mediad.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.log = logf
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("mediad log:\n%s", tail(string(b), 8000))
		}
		logf.Close()
	})
	return p
}

func (p *process) URL() string { return "http://" + p.addr }

// start (re)starts the process and waits until it answers.
func (p *process) start() {
	p.t.Helper()
	bin, err := binary()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"LISTEN_ADDR=" + p.addr, "LOG_FORMAT=json", "PATH=" + os.Getenv("PATH")}
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL() + "/health")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("mediad did not answer: %v", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// kill is kill -9.
func (p *process) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// term sends SIGTERM and returns the exit status.
func (p *process) term() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.cmd.Wait()
}
