package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/mediad/config"
	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/media"
	"github.com/logicspike/mediad/internal/storage"
	"github.com/logicspike/mediad/internal/testsvc"
)

func TestMain(m *testing.M) { testsvc.Main(m) }

// backend is one pairing of a real database with a real store.
type backend struct{ db, store string }

func (b backend) String() string { return b.db + "+" + b.store }

// backends: every database meets every store.
var backends = []backend{{"sqlite", "disk"}, {"postgres", "s3"}, {"sqlite", "s3"}, {"postgres", "disk"}}

// forEachBackend runs f once per backend, as subtests.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) { f(t, b) })
	}
}

// server is a mediad started through run(), as main starts it.
type server struct {
	URL    string
	cfg    config.Config
	db     *ent.Client // the same database, opened beside the server, for assertions
	store  storage.Store
	s3     *testsvc.S3Server // nil with disk storage
	cancel context.CancelFunc
	done   chan error
	log    *syncBuffer
	env    map[string]string // what it was started with
}

// syncBuffer collects the server's log and tells when it listens.
type syncBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			select {
			case b.listening <- line.Addr:
			default:
			}
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs mediad on a free port with the backend's real services;
// extra overrides environment variables.
func start(t *testing.T, b backend, extra map[string]string) *server {
	t.Helper()
	env := map[string]string{
		"LISTEN_ADDR":                    "127.0.0.1:0",
		"DATA_DIR":                       t.TempDir(),
		"LOG_FORMAT":                     "json",
		"LOG_LEVEL":                      "debug",
		"S3_PART_SIZE":                   fmt.Sprint(5 << 20),
		"SHUTDOWN_GRACE":                 "10s",
		"RATE_LIMIT_UPLOADS_PER_MINUTE":  "100000",
		"RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
	}
	var s3srv *testsvc.S3Server
	if b.db == "postgres" {
		env["DATABASE_URL"] = testsvc.Postgres(t)
	}
	if b.store == "s3" {
		s3srv = testsvc.S3(t)
		env["STORAGE"] = "s3"
		env["S3_ENDPOINT"] = s3srv.Endpoint
		env["S3_REGION"] = s3srv.Region
		env["S3_BUCKET"] = s3srv.Bucket
		env["S3_ACCESS_KEY_ID"] = s3srv.AccessKey
		env["S3_SECRET_ACCESS_KEY"] = s3srv.SecretKey
		env["S3_PATH_STYLE"] = "true"
		env["PUBLIC_MEDIA_URL"] = s3srv.Endpoint + "/" + s3srv.Bucket
	}
	for k, v := range extra {
		env[k] = v
	}
	return startEnv(t, env, s3srv)
}

func startEnv(t *testing.T, env map[string]string, s3srv *testsvc.S3Server) *server {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{cfg: cfg, env: env, s3: s3srv, cancel: cancel, done: make(chan error, 1), log: &syncBuffer{listening: make(chan string, 1)}}
	go func() { s.done <- run(ctx, []string{"mediad"}, func(k string) string { return env[k] }, s.log) }()
	select {
	case addr := <-s.log.listening:
		s.URL = "http://" + addr
	case err := <-s.done:
		t.Fatalf("mediad did not start: %v\n%s", err, s.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("mediad did not start in 30 s\n%s", s.log)
	}
	s.db, err = openDatabase(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.store, _, err = openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop(t)
		s.db.Close()
		if t.Failed() {
			t.Logf("mediad log:\n%s", tail(s.log.String(), 6000))
		}
	})
	return s
}

// stop ends mediad as SIGTERM does and returns run's result.
func (s *server) stop(t *testing.T) error {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("mediad did not stop in 60 s")
		return nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// who is a caller, as the gateway describes it.
type who struct{ user, tenant, perms string }

func (w who) set(h http.Header) {
	if w.user != "" {
		h.Set("x-user-id", w.user)
	}
	if w.tenant != "" {
		h.Set("x-tenant-id", w.tenant)
	}
	if w.perms != "" {
		h.Set("x-user-permissions", w.perms)
	}
}

var alice = who{user: "u_alice"}

func (s *server) do(t *testing.T, as who, method, path string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	as.set(req.Header)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// multipartBody is a form with the given text fields and one file part.
func multipartBody(fields [][2]string, filename string, content []byte) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	fw, _ := mw.CreateFormFile("file", filename)
	fw.Write(content)
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// upload posts one file and returns the response.
func (s *server) upload(t *testing.T, as who, purpose, filename string, content []byte) *http.Response {
	t.Helper()
	ct, body := multipartBody(nil, filename, content)
	return s.do(t, as, "POST", "/upload?purpose="+purpose, bytes.NewReader(body), map[string]string{"Content-Type": ct})
}

// mustUpload uploads and expects 201.
func (s *server) mustUpload(t *testing.T, as who, purpose, filename string, content []byte) media.File {
	t.Helper()
	resp := s.upload(t, as, purpose, filename, content)
	var f media.File
	decode(t, resp, http.StatusCreated, &f)
	return f
}

// decode checks the status and decodes the JSON body.
func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
	}
}

type problemDoc struct {
	Type, Title, Detail, Code string
	Status                    int
}

// expectProblem checks a problem+json answer and returns it.
func expectProblem(t *testing.T, resp *http.Response, status int, code string) problemDoc {
	t.Helper()
	var p problemDoc
	decode(t, resp, status, &p)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q", ct)
	}
	if p.Code != code || p.Status != status || p.Type != "about:blank" || p.Title == "" {
		t.Errorf("problem %+v, want status %d code %s", p, status, code)
	}
	return p
}

// rows returns every row of the database.
func (s *server) rows(t *testing.T) []*ent.MediaFile {
	t.Helper()
	rows, err := s.db.MediaFile.Query().Order(mediafile.ByCreatedAt()).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// objects lists every object key in the store (blob files on disk).
func (s *server) objects(t *testing.T) []string {
	t.Helper()
	if s.s3 != nil {
		return s.s3.Keys(t)
	}
	var keys []string
	root := s.cfg.BlobDir()
	walk(t, root, "", &keys)
	return keys
}

func walk(t *testing.T, root, rel string, keys *[]string) {
	entries, err := os.ReadDir(root + "/" + rel)
	if err != nil {
		if os.IsNotExist(err) {
			return
		}
		t.Fatal(err)
	}
	for _, e := range entries {
		name := strings.TrimPrefix(rel+"/"+e.Name(), "/")
		if strings.HasPrefix(e.Name(), ".meta") && rel == "" {
			continue
		}
		if e.IsDir() {
			walk(t, root, name, keys)
		} else {
			*keys = append(*keys, name)
		}
	}
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 20*time.Second, what, cond)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// command runs `mediad ARGS…` with the server's configuration.
func (s *server) command(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCommand(t, s.env, args...)
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runCommand runs `mediad ARGS…` in-process with env.
func runCommand(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"mediad"}, args...), func(k string) string {
		if k == "LOG_LEVEL" {
			return "warn"
		}
		return env[k]
	}, &out)
	return out.String(), err
}

// eventuallyWithin polls cond for up to d.
func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openTestStore opens the store a configuration names.
func openTestStore(t *testing.T, env map[string]string) storage.Store {
	t.Helper()
	st, _, err := openStore(loadConfig(t, env))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
