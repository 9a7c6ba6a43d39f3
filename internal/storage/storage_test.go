package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/logicspike/mediad/internal/storage"
	"github.com/logicspike/mediad/internal/testsvc"
)

const partSize = 5 << 20 // the S3 minimum, but for the last part

// fixture is one backend under test, fresh for each test.
type fixture struct {
	store storage.Store
	// leftovers lists, from outside the store, what an upload in progress
	// holds: the keys of the open multipart uploads on S3, the temporary
	// files on disk.
	leftovers func(t *testing.T) []string
	// listCalls counts the listing requests sent (S3; nil on disk).
	listCalls *requestCounter
}

var backends = []struct {
	name string
	open func(t *testing.T) fixture
}{
	{"disk", func(t *testing.T) fixture {
		d, dir := newDisk(t)
		return fixture{store: d, leftovers: func(t *testing.T) []string { return tempFiles(t, dir) }}
	}},
	{"s3", func(t *testing.T) fixture {
		srv := testsvc.S3(t)
		calls := &requestCounter{base: &http.Transport{MaxIdleConnsPerHost: 64}}
		st := newS3(srv, &http.Client{Transport: calls})
		return fixture{store: st, leftovers: func(t *testing.T) []string { return srv.OpenUploads(t) }, listCalls: calls}
	}},
}

func newDisk(t *testing.T) (*storage.Disk, string) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := storage.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, dir
}

// newS3 is the S3 store on srv, as main builds it but for the part size;
// a nil hc keeps the store's own HTTP client.
func newS3(srv *testsvc.S3Server, hc *http.Client) *storage.S3 {
	return storage.NewS3(storage.S3Config{
		Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true,
		PartSize: partSize, PartConcurrency: 2, MaxUploads: 4, HTTPClient: hc,
	})
}

// tempFiles lists the .tmp-* files below dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	found := []string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), ".tmp-") {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// requestCounter counts the S3 listing requests going through it.
type requestCounter struct {
	base          http.RoundTripper
	objects, mpus atomic.Int64 // ListObjectsV2, ListMultipartUploads
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		if q.Get("list-type") == "2" {
			c.objects.Add(1)
		}
		if q.Has("uploads") {
			c.mpus.Add(1)
		}
	}
	return c.base.RoundTrip(r)
}

// stream is a reader of size zero bytes, given 64 KiB a Read at most (as
// from a network), that, once it has given mark bytes, calls at; an error
// from at is then its error for good.
type stream struct {
	size, mark, n int64
	at            func() error
	err           error
	marked        bool
}

func (s *stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.marked && s.n >= s.mark {
		s.marked = true
		if s.err = s.at(); s.err != nil {
			return 0, s.err
		}
	}
	if s.n >= s.size {
		return 0, io.EOF
	}
	end := s.size
	if !s.marked {
		end = min(end, s.mark)
	}
	k := min(int64(len(p)), end-s.n, 64<<10)
	clear(p[:k])
	s.n += k
	return int(k), nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, st storage.Store, key, body, contentType string) {
	t.Helper()
	if err := st.Put(ctxT(t), key, strings.NewReader(body), storage.Meta{ContentType: contentType}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// walk collects what Walk gives for prefix.
func walk(t *testing.T, st storage.Store, prefix string) []storage.Object {
	t.Helper()
	objs := []storage.Object{}
	if err := st.Walk(ctxT(t), prefix, func(o storage.Object) error { objs = append(objs, o); return nil }); err != nil {
		t.Fatalf("walk %q: %v", prefix, err)
	}
	return objs
}

func keysOf(objs []storage.Object) []string {
	keys := []string{}
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestStore runs the behaviour both backends share, each test on a fresh
// store (a fresh directory, a fresh versitygw).
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, f fixture)
	}{
		{"RoundTrip", testRoundTrip},
		{"DeleteMissing", testDeleteMissing},
		{"Walk", testWalk},
		{"WalkMany", testWalkMany},
		{"PutReaderFails", testPutReaderFails},
		{"PutCancelled", testPutCancelled},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.run(t, b.open(t))
				})
			}
		})
	}
}

func testRoundTrip(t *testing.T, f fixture) {
	ctx := ctxT(t)
	if err := f.store.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	const key, body = "a/b/photo.jpg", "not really a jpeg"
	put(t, f.store, key, body, "image/jpeg")

	obj, err := f.store.Stat(ctx, key)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if obj.Key != key || obj.Size != int64(len(body)) || obj.ContentType != "image/jpeg" || time.Since(obj.Modified).Abs() > time.Minute {
		t.Errorf("stat = %+v", obj)
	}
	rc, obj2, err := f.store.Open(ctx, key)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != body {
		t.Errorf("read %q, %v; want %q", got, err, body)
	}
	if obj2.Size != obj.Size || obj2.ContentType != "image/jpeg" {
		t.Errorf("open gave %+v, stat %+v", obj2, obj)
	}

	if err := f.store.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := f.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("stat after delete: %v, want ErrNotFound", err)
	}
	if _, _, err := f.store.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("open after delete: %v, want ErrNotFound", err)
	}
	if objs := walk(t, f.store, ""); len(objs) != 0 {
		t.Errorf("walk after delete: %v", keysOf(objs))
	}
}

func testDeleteMissing(t *testing.T, f fixture) {
	ctx := ctxT(t)
	put(t, f.store, "here", "x", "text/plain")
	if err := f.store.Delete(ctx, "missing", "no/such/key", "here"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := f.store.Delete(ctx, "here"); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if _, err := f.store.Stat(ctx, "here"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("stat after delete: %v, want ErrNotFound", err)
	}
}

func testWalk(t *testing.T, f fixture) {
	// "-" sorts before "/", which sorts before letters: a directory's keys
	// come after a-c and before ab, as on S3.
	keys := []string{"b", "a/b", "a-c", "ab", "a/c/d", "a/b2", "c/d/e/f"}
	for i, k := range keys {
		put(t, f.store, k, strings.Repeat("x", i+1), "text/plain")
	}
	all := walk(t, f.store, "")
	want := slices.Sorted(slices.Values(keys))
	if got := keysOf(all); !slices.Equal(got, want) {
		t.Fatalf("walk all = %q, want %q", got, want)
	}
	for _, o := range all {
		if o.Size != int64(slices.Index(keys, o.Key)+1) || time.Since(o.Modified).Abs() > time.Minute || o.ContentType != "" {
			t.Errorf("walk gave %+v", o)
		}
	}

	for prefix, want := range map[string][]string{
		"a/":     {"a/b", "a/b2", "a/c/d"},
		"a":      {"a-c", "a/b", "a/b2", "a/c/d", "ab"},
		"a/b":    {"a/b", "a/b2"},
		"a/c/":   {"a/c/d"},
		"c/d/e":  {"c/d/e/f"},
		"b":      {"b"},
		"b/":     {}, // b is an object, not a directory
		"zz":     {},
		"../":    {},
		"/":      {},
		".meta/": {},
	} {
		if got := keysOf(walk(t, f.store, prefix)); !slices.Equal(got, want) {
			t.Errorf("walk %q = %q, want %q", prefix, got, want)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err := f.store.Walk(ctxT(t), "", func(storage.Object) error {
		if calls++; calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Errorf("walk stopped by fn: %v after %d calls, want %v after 2", err, calls, stop)
	}
}

func testWalkMany(t *testing.T, f fixture) {
	const n = 1010 // more than one S3 page of 1000
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("many/%05d", i))
	}
	put(t, f.store, "manx", "outside the prefix", "text/plain")
	put(t, f.store, "man", "outside the prefix", "text/plain")
	start := time.Now()
	var wg sync.WaitGroup
	keys := make(chan string)
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				if err := f.store.Put(ctxT(t), k, strings.NewReader(k), storage.Meta{ContentType: "text/plain"}); err != nil {
					t.Errorf("put %s: %v", k, err)
				}
			}
		})
	}
	for _, k := range want {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d puts in %v", n, time.Since(start).Round(time.Millisecond))

	var before int64
	if f.listCalls != nil {
		before = f.listCalls.objects.Load()
	}
	start = time.Now()
	got := keysOf(walk(t, f.store, "many/"))
	t.Logf("walk of %d keys in %v", len(got), time.Since(start).Round(time.Millisecond))
	if !slices.Equal(got, want) {
		t.Fatalf("walk many/ gave %d keys %q…, want %d", len(got), got[:min(len(got), 3)], len(want))
	}
	if f.listCalls != nil {
		if pages := f.listCalls.objects.Load() - before; pages != 2 {
			t.Errorf("walk of %d keys took %d ListObjectsV2 pages, want 2", n, pages)
		}
	}
	if got := len(walk(t, f.store, "")); got != n+2 {
		t.Errorf("walk all gave %d keys, want %d", got, n+2)
	}
}

// failingPuts are the points where the tests below break a Put: within the
// first part (a single PUT on S3) and after two whole parts (a multipart
// upload with parts stored).
var failingPuts = []struct {
	name       string
	size, mark int64
}{
	{"InFirstPart", 8 << 20, 2 << 20},
	{"AfterTwoParts", 40 << 20, 12 << 20},
}

// checkNothingLeft checks that a failed Put left no object and no upload.
func checkNothingLeft(t *testing.T, f fixture, key string) {
	t.Helper()
	if _, err := f.store.Stat(ctxT(t), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("stat after the failed put: %v, want ErrNotFound", err)
	}
	if objs := walk(t, f.store, ""); len(objs) != 0 {
		t.Errorf("objects after the failed put: %q", keysOf(objs))
	}
	if left := f.leftovers(t); len(left) != 0 {
		t.Errorf("uploads left after the failed put: %q", left)
	}
	ups, err := f.store.Uploads(ctxT(t), time.Now().Add(time.Hour))
	if err != nil || len(ups) != 0 {
		t.Errorf("Uploads after the failed put: %v, %v", ups, err)
	}
}

func testPutReaderFails(t *testing.T, f fixture) {
	for _, tt := range failingPuts {
		t.Run(tt.name, func(t *testing.T) {
			boom := errors.New("client went away")
			r := &stream{size: tt.size, mark: tt.mark, at: func() error { return boom }}
			err := f.store.Put(ctxT(t), "broken/"+tt.name, r, storage.Meta{ContentType: "video/mp4"})
			if !errors.Is(err, boom) {
				t.Fatalf("put = %v, want an error wrapping %v", err, boom)
			}
			t.Logf("put: %v", err)
			checkNothingLeft(t, f, "broken/"+tt.name)
		})
	}
}

func testPutCancelled(t *testing.T, f fixture) {
	for _, tt := range failingPuts {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			r := &stream{size: tt.size, mark: tt.mark, at: func() error { cancel(); return nil }}
			err := f.store.Put(ctx, "cancelled/"+tt.name, r, storage.Meta{ContentType: "video/mp4"})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("put = %v, want an error wrapping context.Canceled", err)
			}
			t.Logf("put: %v (read %d KiB of %d)", err, r.n>>10, tt.size>>10)
			if r.n > tt.mark+64<<10 {
				t.Errorf("put read %d KiB, on after ctx ended at %d KiB", r.n>>10, tt.mark>>10)
			}
			checkNothingLeft(t, f, "cancelled/"+tt.name)
		})
	}
}

func TestDiskPutRefusesBadKeys(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	for _, key := range []string{
		"", "../escape", "a/../../escape", "a/../b", "/abs", "/tmp/abs", ".hidden", "a/.hidden",
		".meta/x.json", ".tmp-1-x", "a\\b", "..\\escape", "a//b", "a/./b", "a/", ".", "..", "a\x00b",
	} {
		if err := d.Put(ctxT(t), key, strings.NewReader("x"), storage.Meta{}); err == nil {
			t.Errorf("put %q: no error", key)
		}
	}
	// Nothing was written, in the store nor beside it.
	for d, want := range map[string][]string{dir: nil, filepath.Dir(dir): {"blobs"}} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s holds %q after the refused puts, want %q", d, names, want)
		}
	}
}

func TestDiskUploads(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	d, dir := newDisk(t)
	put(t, d, "a/b.txt", "done", "text/plain")
	stale := map[string]string{ // temp file → the key its Put was writing
		"a/.tmp-1700000000000000000-c.txt": "a/c.txt",
		".tmp-1700000000000000001-top":     "top",
	}
	old := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	for name := range stale {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.WriteFile(p, []byte("half an object"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// A Put still writing: a fresh temp file.
	if err := os.WriteFile(filepath.Join(dir, "a", ".tmp-9-d.txt"), []byte("in progress"), 0o644); err != nil {
		t.Fatal(err)
	}

	if got := keysOf(walk(t, d, "")); !slices.Equal(got, []string{"a/b.txt"}) {
		t.Errorf("walk = %q, want only a/b.txt", got)
	}
	if n := len(mustUploads(t, d, time.Now().Add(time.Minute))); n != 3 {
		t.Errorf("Uploads(now+1m) listed %d, want 3", n)
	}
	ups := mustUploads(t, d, time.Now().Add(-time.Hour))
	if len(ups) != len(stale) {
		t.Fatalf("Uploads(now-1h) = %+v, want the %d stale temp files", ups, len(stale))
	}
	for _, u := range ups {
		if stale[u.ID] != u.Key || !u.Started.Equal(old) {
			t.Errorf("upload %+v, want key %q started %v", u, stale[u.ID], old)
		}
		if err := d.AbortUpload(ctx, u); err != nil {
			t.Fatalf("abort %s: %v", u.ID, err)
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(u.ID))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after abort: %v", u.ID, err)
		}
		if err := d.AbortUpload(ctx, u); err != nil {
			t.Errorf("aborting %s again: %v", u.ID, err)
		}
	}
	if ups := mustUploads(t, d, time.Now().Add(-time.Hour)); len(ups) != 0 {
		t.Errorf("Uploads after abort = %+v", ups)
	}

	for _, id := range []string{"a/b.txt", "../.tmp-1-x", "a/../../.tmp-1-x", "/.tmp-1-x", ".meta/a/.tmp-1-x", "a\\.tmp-1-x", ""} {
		if err := d.AbortUpload(ctx, storage.Upload{ID: id}); err == nil {
			t.Errorf("abort %q: no error", id)
		}
	}
	if _, err := d.Stat(ctx, "a/b.txt"); err != nil {
		t.Errorf("a/b.txt after refused aborts: %v", err)
	}
}

func mustUploads(t *testing.T, st storage.Store, before time.Time) []storage.Upload {
	t.Helper()
	ups, err := st.Uploads(ctxT(t), before)
	if err != nil {
		t.Fatalf("uploads: %v", err)
	}
	return ups
}

// startUpload creates a multipart upload with the client directly, with
// parts parts of 5 MiB (0 for none), and returns its id.
func startUpload(ctx context.Context, srv *testsvc.S3Server, key string, parts int32) (string, error) {
	c := srv.Client()
	out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
	if err != nil {
		return "", fmt.Errorf("create multipart upload %s: %w", key, err)
	}
	for n := int32(1); n <= parts; n++ {
		_, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String(key), UploadId: out.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(make([]byte, partSize)),
		})
		if err != nil {
			return "", fmt.Errorf("upload part %d of %s: %w", n, key, err)
		}
	}
	return aws.ToString(out.UploadId), nil
}

func TestS3Uploads(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	srv := testsvc.S3(t)
	st := newS3(srv, nil)
	put(t, st, "done.txt", "done", "text/plain")
	id, err := startUpload(ctx, srv, "up/big.bin", 1)
	if err != nil {
		t.Fatal(err)
	}

	if got := keysOf(walk(t, st, "")); !slices.Equal(got, []string{"done.txt"}) {
		t.Errorf("walk = %q, want only done.txt", got)
	}
	if ups := mustUploads(t, st, time.Now().Add(-time.Minute)); len(ups) != 0 {
		t.Errorf("Uploads(now-1m) = %+v, want none", ups)
	}
	ups := mustUploads(t, st, time.Now().Add(time.Minute))
	if len(ups) != 1 || ups[0].Key != "up/big.bin" || ups[0].ID != id || time.Since(ups[0].Started).Abs() > time.Minute {
		t.Fatalf("Uploads(now+1m) = %+v, want up/big.bin %s", ups, id)
	}
	if err := st.AbortUpload(ctx, ups[0]); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if left := srv.OpenUploads(t); len(left) != 0 {
		t.Errorf("open uploads after abort: %q", left)
	}
	if ups := mustUploads(t, st, time.Now().Add(time.Minute)); len(ups) != 0 {
		t.Errorf("Uploads after abort = %+v", ups)
	}
	if err := st.AbortUpload(ctx, ups[0]); err != nil {
		t.Errorf("aborting again: %v", err)
	}
}

// TestS3UploadsPages lists more uploads than a page holds, with a page
// ending amid the uploads of one key: the versitygw workaround.
func TestS3UploadsPages(t *testing.T) {
	t.Parallel()
	srv := testsvc.S3(t)
	calls := &requestCounter{base: &http.Transport{MaxIdleConnsPerHost: 64}}
	st := newS3(srv, &http.Client{Transport: calls})
	var keys []string
	for i := range 1004 {
		keys = append(keys, fmt.Sprintf("k/%04d", i))
	}
	// 998 keys with one upload, then k/0998 with three: the first page of
	// 1000 ends on its second.
	keys = append(keys, "k/0998", "k/0998")
	start := time.Now()
	ids := parallel(t, keys, func(key string) (string, error) { return startUpload(ctxT(t), srv, key, 0) })
	var want []string
	for i, id := range ids {
		want = append(want, keys[i]+" "+id)
	}
	t.Logf("%d uploads created in %v", len(keys), time.Since(start).Round(time.Millisecond))

	before := calls.mpus.Load()
	ups := mustUploads(t, st, time.Now().Add(time.Minute))
	t.Logf("listed in %d requests", calls.mpus.Load()-before)
	var got []string
	for _, u := range ups {
		got = append(got, u.Key+" "+u.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Uploads gave %d, want the %d created (one each)", len(got), len(want))
	}
	if n := calls.mpus.Load() - before; n < 3 {
		t.Errorf("listed in %d requests: the listing did not page", n)
	}
	parallel(t, ups, func(u storage.Upload) (string, error) { return "", st.AbortUpload(ctxT(t), u) })
	if left := srv.OpenUploads(t); len(left) != 0 {
		t.Errorf("%d uploads open after aborting all", len(left))
	}
}

// parallel calls fn for each item, 16 at a time, and returns its results
// in the order of the items. Any error fails the test.
func parallel[T any](t *testing.T, items []T, fn func(T) (string, error)) []string {
	t.Helper()
	out := make([]string, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = fn(it)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestS3PutServerStopped kills versitygw in the middle of a multipart Put
// (and, in the second case, ends its ctx at the same moment): the Put must
// fail promptly, with ctx's error if ctx ended. The upload it could not
// abort is then left for the reaper, which Uploads and AbortUpload serve
// once S3 is back.
func TestS3PutServerStopped(t *testing.T) {
	for _, cancelToo := range []bool{false, true} {
		t.Run(map[bool]string{false: "Stopped", true: "StoppedAndCancelled"}[cancelToo], func(t *testing.T) {
			srv := testsvc.S3(t)
			st := newS3(srv, nil) // the store's own HTTP client and the SDK's default retryer
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			var stopped time.Time
			r := &stream{size: 64 << 20, mark: 12 << 20, at: func() error {
				if cancelToo {
					cancel()
				}
				srv.Stop()
				stopped = time.Now()
				return nil
			}}
			err := st.Put(ctx, "outage.bin", r, storage.Meta{ContentType: "video/mp4"})
			took := time.Since(stopped)
			if err == nil {
				t.Fatal("put succeeded with the server stopped")
			}
			t.Logf("put failed %v after the server stopped (read %d MiB): %v", took.Round(time.Millisecond), r.n>>20, err)
			if took > 30*time.Second {
				t.Errorf("put took %v to fail after the server stopped", took)
			}
			if cancelToo && !errors.Is(err, context.Canceled) {
				t.Errorf("put = %v, want an error wrapping context.Canceled", err)
			}

			srv.Start(t)
			if _, err := st.Stat(ctxT(t), "outage.bin"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("stat after the failed put: %v, want ErrNotFound", err)
			}
			ups := mustUploads(t, st, time.Now().Add(time.Minute))
			t.Logf("left open for the reaper: %+v", ups)
			if open := srv.OpenUploads(t); len(open) != len(ups) {
				t.Errorf("Uploads listed %d, the server has %d open", len(ups), len(open))
			}
			for _, u := range ups {
				if err := st.AbortUpload(ctxT(t), u); err != nil {
					t.Errorf("abort: %v", err)
				}
			}
			if open := srv.OpenUploads(t); len(open) != 0 {
				t.Errorf("uploads open after the reaper's aborts: %q", open)
			}
		})
	}
}

// TestDiskWalkStaysInside: the walk lists the objects only, never follows a
// symbolic link (out of the directory or within it), and shows no sidecar,
// temporary file or name that is no key.
func TestDiskWalkStaysInside(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	put(t, d, "a/x", "object", "text/plain")
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"link":         outside,
		"a/file-link":  filepath.Join(outside, "secret"),
		"a/inner-link": filepath.Join(dir, "a"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a/.tmp-1-y", "a/back\\slash", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string][]string{
		"": {"a/x"}, "a": {"a/x"}, "a/": {"a/x"}, "link": {}, "link/": {}, "a/inner-link/": {}, "a/file-link": {},
	} {
		if got := keysOf(walk(t, d, prefix)); !slices.Equal(got, want) {
			t.Errorf("walk %q = %q, want %q", prefix, got, want)
		}
	}
}
