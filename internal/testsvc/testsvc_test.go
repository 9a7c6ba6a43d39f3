package testsvc_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/logicspike/mediad/internal/testsvc"
)

func TestMain(m *testing.M) { testsvc.Main(m) }

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	dsn1, dsn2 := testsvc.Postgres(t), testsvc.Postgres(t)
	if dsn1 == dsn2 {
		t.Fatalf("two calls returned the same DSN %q", dsn1)
	}
	for _, dsn := range []string{dsn1, dsn2} {
		if !strings.HasPrefix(dsn, "postgres://") || !strings.Contains(dsn, "@127.0.0.1:") || !strings.HasSuffix(dsn, "?sslmode=disable") {
			t.Errorf("unexpected DSN %q", dsn)
		}
	}
	db1, db2 := openDB(t, dsn1), openDB(t, dsn2)

	var name1, name2 string
	if err := db1.QueryRowContext(ctx, "SELECT current_database()").Scan(&name1); err != nil {
		t.Fatal(err)
	}
	if err := db2.QueryRowContext(ctx, "SELECT current_database()").Scan(&name2); err != nil {
		t.Fatal(err)
	}
	if name1 == name2 {
		t.Fatalf("both DSNs lead to database %q", name1)
	}

	if _, err := db1.ExecContext(ctx, "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db1.ExecContext(ctx, "INSERT INTO items (name) VALUES ($1), ($2)", "a", "b"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db1.QueryRowContext(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2", n, err)
	}
	// The other database is fresh and empty.
	if err := db2.QueryRowContext(ctx,
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database has %d tables (%v); want 0", n, err)
	}
	var enc string
	if err := db1.QueryRowContext(ctx, "SHOW server_encoding").Scan(&enc); err != nil || enc != "UTF8" {
		t.Fatalf("server_encoding = %q, %v; want UTF8", enc, err)
	}

	// The database of a finished test is dropped, even with a connection
	// still open.
	var subName string
	t.Run("dropped", func(t *testing.T) {
		db := openDB(t, testsvc.Postgres(t))
		if err := db.QueryRowContext(ctx, "SELECT current_database()").Scan(&subName); err != nil {
			t.Fatal(err)
		}
		// Leak a connection on purpose: the cleanup must still drop the db.
		conn, err := sql.Open("pgx", testsvc.Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	})
	var exists bool
	if err := db1.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", subName).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %q still exists after its test finished", subName)
	}
}

func TestPostgresParallel(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			db := openDB(t, testsvc.Postgres(t))
			if _, err := db.ExecContext(t.Context(), "CREATE TABLE t (v int); INSERT INTO t VALUES (1)"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	r := testsvc.Redis(t)
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") || r.URL != "redis://"+r.Addr+"/0" {
		t.Fatalf("Addr %q, URL %q", r.Addr, r.URL)
	}
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1 // report an outage at once
	opts.DialTimeout = time.Second
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })

	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}
	// No persistence is configured.
	if got, err := rdb.ConfigGet(ctx, "save").Result(); err != nil || got["save"] != "" {
		t.Fatalf("CONFIG GET save = %v, %v; want empty", got, err)
	}
	if got, err := rdb.ConfigGet(ctx, "appendonly").Result(); err != nil || got["appendonly"] != "no" {
		t.Fatalf("CONFIG GET appendonly = %v, %v; want no", got, err)
	}

	// A second server is independent.
	other := testsvc.Redis(t)
	if other.Addr == r.Addr {
		t.Fatalf("two servers on %s", r.Addr)
	}

	r.Stop()
	r.Stop() // idempotent
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded with the server stopped")
	}

	addr := r.Addr
	r.Start(t)
	r.Start(t) // no-op when running
	if r.Addr != addr {
		t.Fatalf("restarted on %s, want %s", r.Addr, addr)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		// The pool may hand out a connection to the killed server once.
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING after restart: %v", err)
		}
	}
	if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after restart: %v; want redis.Nil (no persistence)", err)
	}
	if err := rdb.Set(ctx, "k", "v2", 0).Err(); err != nil {
		t.Fatalf("SET after restart: %v", err)
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	s := testsvc.S3(t)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") || s.Region != "auto" || s.Bucket == "" || s.AccessKey == "" || s.SecretKey == "" {
		t.Fatalf("unexpected server %+v", s)
	}
	c := s.Client()

	if got := s.Keys(t); len(got) != 0 {
		t.Fatalf("new bucket has keys %q", got)
	}
	body := []byte("hello, s3")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("dir/hello.txt"),
		Body: bytes.NewReader(body), ContentType: aws.String("text/plain"),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if got := s.Keys(t); !slices.Equal(got, []string{"dir/hello.txt"}) {
		t.Fatalf("Keys = %q", got)
	}
	getBody := func(key string) []byte {
		t.Helper()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObject %s: %v", key, err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := getBody("dir/hello.txt"); !bytes.Equal(got, body) {
		t.Fatalf("GetObject = %q", got)
	}
	// The posix backend stores objects as plain files.
	if b, err := os.ReadFile(filepath.Join(s.Dir, s.Bucket, "dir", "hello.txt")); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("object file: %q, %v", b, err)
	}

	// An in-progress multipart upload shows in OpenUploads but not in Keys.
	mpu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	part1 := bytes.Repeat([]byte("x"), 5<<20) // non-last parts must be >= 5 MiB
	up1, err := c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("big.bin"), UploadId: mpu.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(part1),
	})
	if err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	if got := s.OpenUploads(t); !slices.Equal(got, []string{"big.bin"}) {
		t.Fatalf("OpenUploads = %q", got)
	}
	if got := s.Keys(t); !slices.Equal(got, []string{"dir/hello.txt"}) {
		t.Fatalf("Keys during upload = %q", got)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, s.Bucket, ".sgwtmp", "multipart")); err != nil {
		t.Errorf("multipart state not where expected: %v", err)
	}

	// Outage.
	s.Stop()
	s.Stop() // idempotent
	start := time.Now()
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)}); err == nil {
		t.Fatal("ListObjectsV2 succeeded with the server stopped")
	}
	t.Logf("request to the stopped server failed after %v", time.Since(start).Round(time.Millisecond))

	// Restart: same endpoint, same data, the upload can be finished.
	endpoint := s.Endpoint
	s.Start(t)
	s.Start(t) // no-op when running
	if s.Endpoint != endpoint {
		t.Fatalf("restarted on %s, want %s", s.Endpoint, endpoint)
	}
	if got := s.Keys(t); !slices.Equal(got, []string{"dir/hello.txt"}) {
		t.Fatalf("Keys after restart = %q", got)
	}
	if got := s.OpenUploads(t); !slices.Equal(got, []string{"big.bin"}) {
		t.Fatalf("OpenUploads after restart = %q", got)
	}
	up2, err := c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("big.bin"), UploadId: mpu.UploadId,
		PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("tail")),
	})
	if err != nil {
		t.Fatalf("UploadPart after restart: %v", err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("big.bin"), UploadId: mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: up1.ETag},
			{PartNumber: aws.Int32(2), ETag: up2.ETag},
		}},
	}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got := s.OpenUploads(t); len(got) != 0 {
		t.Fatalf("OpenUploads after complete = %q", got)
	}
	if got := s.Keys(t); !slices.Equal(got, []string{"big.bin", "dir/hello.txt"}) {
		t.Fatalf("Keys after complete = %q", got)
	}
	if got := getBody("big.bin"); !bytes.Equal(got, append(part1, "tail"...)) {
		t.Fatalf("big.bin has %d bytes, want %d", len(got), len(part1)+4)
	}
}

// TestS3MinPartSize documents that versitygw, like AWS, refuses to complete
// an upload whose non-last part is smaller than 5 MiB (EntityTooSmall, at
// CompleteMultipartUpload time, not at UploadPart time).
func TestS3MinPartSize(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := testsvc.S3(t)
	c := s.Client()

	mpu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: aws.String("small")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i := int32(1); i <= 2; i++ {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.Bucket), Key: aws.String("small"), UploadId: mpu.UploadId,
			PartNumber: aws.Int32(i), Body: bytes.NewReader([]byte("tiny")),
		})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(i), ETag: out.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("small"), UploadId: mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "EntityTooSmall" {
		t.Fatalf("CompleteMultipartUpload with 4-byte parts: %v; want EntityTooSmall", err)
	}
	// The failed completion leaves the upload open.
	if got := s.OpenUploads(t); !slices.Equal(got, []string{"small"}) {
		t.Fatalf("OpenUploads = %q", got)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("small"), UploadId: mpu.UploadId,
	}); err != nil {
		t.Fatal(err)
	}
	if got := s.OpenUploads(t); len(got) != 0 {
		t.Fatalf("OpenUploads after abort = %q", got)
	}
}

// TestS3Pagination checks that Keys and OpenUploads follow pagination.
func TestS3Pagination(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := testsvc.S3(t)
	c := s.Client()

	const nObjects = 1003 // more than one page (1000)
	var want, wantUploads []string
	for i := range nObjects {
		want = append(want, fmt.Sprintf("obj/%05d", i))
	}
	// 999 keys with one upload, then one key with three (which straddle the
	// 1000-upload page boundary), then one more key.
	for i := range 999 {
		wantUploads = append(wantUploads, fmt.Sprintf("up/%05d", i))
	}
	wantUploads = append(wantUploads, "up/00999", "up/00999", "up/00999", "up/01000")
	run := func(keys []string, f func(key string) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, len(keys))
		sem := make(chan struct{}, 16)
		for _, k := range keys {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := f(k); err != nil {
					errs <- fmt.Errorf("%s: %w", k, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	run(want, func(key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: strings.NewReader(key)})
		return err
	})
	run(wantUploads, func(key string) error {
		_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
		return err
	})
	if got := s.Keys(t); !slices.Equal(got, want) {
		t.Fatalf("Keys returned %d keys, want %d", len(got), len(want))
	}
	got := s.OpenUploads(t)
	slices.Sort(got)
	if !slices.Equal(got, wantUploads) {
		t.Fatalf("OpenUploads returned %d keys, want %d", len(got), len(wantUploads))
	}
}

// Two S3 servers are independent.
func TestS3Independent(t *testing.T) {
	t.Parallel()
	a, b := testsvc.S3(t), testsvc.S3(t)
	if a.Endpoint == b.Endpoint || a.Dir == b.Dir || a.AccessKey == b.AccessKey {
		t.Fatalf("servers share endpoint, dir or keys: %+v %+v", a, b)
	}
	if _, err := a.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(a.Bucket), Key: aws.String("only-in-a"), Body: strings.NewReader("x"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := b.Keys(t); len(got) != 0 {
		t.Fatalf("b has keys %q", got)
	}
}
