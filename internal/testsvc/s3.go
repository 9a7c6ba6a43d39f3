package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Server is a versitygw (S3 gateway, posix backend) of a test's own,
// started by [S3]. Point the code under test at Endpoint with path-style
// addressing, Region and the static AccessKey/SecretKey.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string // "auto"
	Bucket    string // created by S3; empty
	AccessKey string // root access key (random per server)
	SecretKey string // root secret key (random per server)
	// Dir is the posix backend's root: Bucket is the directory Dir/Bucket and
	// each object a file below it. In-progress multipart uploads are kept in
	// Dir/Bucket/.sgwtmp/multipart (hidden from object listings).
	Dir string

	bin       string
	root      string // temp dir holding Dir and versitygw.log
	port      int
	transport *http.Transport
	client    *s3.Client

	mu     sync.Mutex // guards proc and closed
	proc   *proc      // nil while stopped
	closed bool       // set by the test's cleanup
}

// S3 starts a versitygw of the test's own on a free 127.0.0.1 port:
//
//	ROOT_ACCESS_KEY=… ROOT_SECRET_KEY=… versitygw --port 127.0.0.1:PORT --region auto posix DIR
//
// with DIR in a new temporary directory, waits until it serves requests, and
// creates Bucket through the S3 API. t.Cleanup kills it and removes the
// directory. Its output goes to versitygw.log next to Dir and is shown when
// it fails to start.
//
// versitygw is looked up in $PATH, $GOBIN, $GOPATH/bin (default
// $HOME/go/bin) and `go env GOBIN GOPATH`; if it is missing the test fails
// (run `make test-deps`).
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := findVersitygw()
	if err != nil {
		t.Fatalf("testsvc.S3: %v", err)
	}
	root, err := newTempDir("", "testsvc-s3-")
	if err != nil {
		t.Fatalf("testsvc.S3: %v", err)
	}
	s := &S3Server{
		Region:    "auto",
		Bucket:    "test-bucket",
		AccessKey: "AK" + randomHex(9),
		SecretKey: randomHex(20),
		Dir:       filepath.Join(root, "data"),
		bin:       bin,
		root:      root,
	}
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.Stop()
		removeDir(t, root)
	})
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatalf("testsvc.S3: %v", err)
	}

	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("testsvc.S3: %v", err)
		}
		s.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.transport, s.client = s.newClient()
		inUse, err := s.start()
		if err == nil {
			break
		}
		if !inUse || attempt == 3 {
			t.Fatalf("testsvc.S3: %v\n%s", err, logTail(s.logPath()))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("testsvc.S3: creating bucket %q: %v\n%s", s.Bucket, err, logTail(s.logPath()))
	}
	return s
}

// Client returns an S3 client for the server (path style, region "auto",
// the root credentials, checksums only when required), for assertions. It
// uses the SDK's standard retryer, so a request to a stopped server fails
// only after a few quick retries.
func (s *S3Server) Client() *s3.Client { return s.client }

// newClient builds an S3 client for s.Endpoint with its own transport (so
// Stop can drop its idle connections).
func (s *S3Server) newClient() (*http.Transport, *s3.Client) {
	tr := &http.Transport{
		Proxy:                 nil, // loopback only; never go through $HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	c := s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:                 &http.Client{Transport: tr},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return tr, c
}

// Stop kills the server with SIGKILL (as a crash would: nothing is flushed or
// cleaned up) and waits until it is gone, so that requests fail: use it to
// test S3 outages, e.g. in the middle of a multipart upload. Stopping a
// stopped server does nothing.
func (s *S3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if err := s.proc.kill(); err != nil {
		fmt.Fprintf(os.Stderr, "testsvc: stopping versitygw: %v\n", err)
	}
	s.proc = nil
	s.transport.CloseIdleConnections()
}

// Start starts a stopped server again on the same port with the same data
// directory (objects and in-progress multipart uploads survive) and waits
// until it serves requests. Starting a running server does nothing. t is used
// to report failures only; the server still belongs to the test that called
// [S3].
func (s *S3Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running, closed := s.proc != nil, s.closed
	s.mu.Unlock()
	if closed {
		t.Fatalf("testsvc: S3Server.Start after the test that created it has finished")
	}
	if running {
		return
	}
	if _, err := s.start(); err != nil {
		t.Fatalf("testsvc: restarting versitygw on %s: %v\n%s", s.Endpoint, err, logTail(s.logPath()))
	}
}

// Keys returns the key of every object in Bucket, in S3 (lexical) order,
// following ListObjectsV2 pagination. It fails the test on error.
func (s *S3Server) Keys(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := []string{}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("testsvc: listing objects in %s: %v", s.Bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// OpenUploads returns the keys of the in-progress (neither completed nor
// aborted) multipart uploads in Bucket, in key order, one entry per upload
// (so a key with two open uploads appears twice). It fails the test on
// error.
//
// It pages through ListMultipartUploads with key-marker only: versitygw
// v1.8.0 rejects the AWS continuation (key-marker + upload-id-marker, which
// is what its own NextKeyMarker/NextUploadIdMarker ask for) with
// "InvalidArgument: Invalid uploadId marker". The uploads of the key a page
// ends on are therefore fetched separately, by prefix.
func (s *S3Server) OpenUploads(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := func(in *s3.ListMultipartUploadsInput) *s3.ListMultipartUploadsOutput {
		t.Helper()
		in.Bucket = aws.String(s.Bucket)
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatalf("testsvc: listing multipart uploads in %s: %v", s.Bucket, err)
		}
		return out
	}
	keys := []string{}
	seen := map[string]bool{} // upload IDs
	add := func(u types.MultipartUpload) {
		if id := aws.ToString(u.UploadId); !seen[id] {
			seen[id] = true
			keys = append(keys, aws.ToString(u.Key))
		}
	}
	in := &s3.ListMultipartUploadsInput{}
	for {
		out := list(in)
		for _, u := range out.Uploads {
			add(u)
		}
		if !aws.ToBool(out.IsTruncated) || len(out.Uploads) == 0 {
			return keys
		}
		last := aws.ToString(out.Uploads[len(out.Uploads)-1].Key)
		if last <= aws.ToString(in.KeyMarker) {
			t.Fatalf("testsvc: listing multipart uploads in %s: truncated listing without progress", s.Bucket)
		}
		// The rest of last's uploads: they sort before any other key with
		// that prefix, so one page has them all unless there are > 1000.
		rest := list(&s3.ListMultipartUploadsInput{Prefix: aws.String(last)})
		for _, u := range rest.Uploads {
			if aws.ToString(u.Key) == last {
				add(u)
			}
		}
		if aws.ToBool(rest.IsTruncated) && aws.ToString(rest.Uploads[len(rest.Uploads)-1].Key) == last {
			t.Fatalf("testsvc: listing multipart uploads in %s: more than 1000 open uploads of %q", s.Bucket, last)
		}
		in = &s3.ListMultipartUploadsInput{KeyMarker: aws.String(last)}
	}
}

func (s *S3Server) logPath() string { return filepath.Join(s.root, "versitygw.log") }

// start runs versitygw on s.port and waits until it answers a signed request
// with our (random) credentials; inUse reports a failure to bind the port.
func (s *S3Server) start() (inUse bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := startProc(s.bin, []string{
		"--port", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		"--region", s.Region,
		"posix", s.Dir,
	}, procOpts{
		dir:      s.root,
		env:      baseEnv("ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey),
		logPath:  s.logPath(),
		deathSig: syscall.SIGKILL,
	})
	if err != nil {
		return false, err
	}
	noRetry := func(o *s3.Options) { o.Retryer = aws.NopRetryer{} }
	err = p.waitReady(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := s.client.ListBuckets(ctx, &s3.ListBucketsInput{}, noRetry)
		return err
	})
	if err != nil {
		inUse = p.addrInUse()
		_ = p.kill()
		return inUse, err
	}
	s.proc = p
	return false, nil
}

// findVersitygw looks for versitygw in $PATH, $GOBIN, $GOPATH/bin (default
// $HOME/go/bin) and finally where `go env` says GOBIN and GOPATH are.
func findVersitygw() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		for _, p := range filepath.SplitList(gopath) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "versitygw"); isExecutable(p) {
			return p, nil
		}
	}
	// GOBIN/GOPATH may have been set with `go env -w` rather than exported.
	if goBin, err := exec.LookPath("go"); err == nil {
		if out, err := exec.Command(goBin, "env", "-json", "GOBIN", "GOPATH").Output(); err == nil {
			var env struct{ GOBIN, GOPATH string }
			if json.Unmarshal(out, &env) == nil {
				var more []string
				if env.GOBIN != "" {
					more = append(more, env.GOBIN)
				}
				for _, gp := range filepath.SplitList(env.GOPATH) {
					more = append(more, filepath.Join(gp, "bin"))
				}
				for _, d := range more {
					dirs = append(dirs, d)
					if p := filepath.Join(d, "versitygw"); isExecutable(p) {
						return p, nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("versitygw not found in $PATH nor in %s; %s", strings.Join(dirs, ", "), installHint)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return strings.ToUpper(hex.EncodeToString(b))
}
