package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/imagery/imagerytest"
	"github.com/logicspike/mediad/internal/media"
	"github.com/logicspike/mediad/internal/storage"
)

func TestIdempotentRetries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		post := func(as who, key string, content []byte) *http.Response {
			ct, body := multipartBody(nil, "a.txt", content)
			return s.do(t, as, "POST", "/upload?purpose=attachment", bytes.NewReader(body), map[string]string{"Content-Type": ct, "Idempotency-Key": key})
		}
		content := text(5000)
		var first, again media.File
		decode(t, post(alice, "key-1", content), 201, &first)
		decode(t, post(alice, "key-1", content), 200, &again)
		if again.ID != first.ID || len(s.rows(t)) != 1 || len(s.objects(t)) != 1 {
			t.Fatalf("retry stored a second file: %s vs %s, %d rows", again.ID, first.ID, len(s.rows(t)))
		}
		expectProblem(t, post(alice, "key-1", text(5001)), 422, "idempotency_key_reused")
		// The key is the user's: another user may use the same one.
		decode(t, post(who{user: "u_bob"}, "key-1", content), 201, nil)
		// An avatar replays too (the bytes compared are the upload's, not the master's).
		jpg := imageFixture()
		ct, body := multipartBody(nil, "me.jpg", jpg)
		var av1, av2 media.File
		decode(t, s.do(t, alice, "POST", "/upload?purpose=avatar", bytes.NewReader(body), map[string]string{"Content-Type": ct, "Idempotency-Key": "av"}), 201, &av1)
		decode(t, s.do(t, alice, "POST", "/upload?purpose=avatar", bytes.NewReader(body), map[string]string{"Content-Type": ct, "Idempotency-Key": "av"}), 200, &av2)
		if av1.ID != av2.ID {
			t.Fatal("avatar retry made a second file")
		}
		// After a delete, the key is free again.
		if resp := s.do(t, alice, "DELETE", "/files/"+first.ID, nil, nil); resp.StatusCode != 204 {
			t.Fatal(resp.Status)
		}
		decode(t, post(alice, "key-1", content), 201, nil)
		expectProblem(t, post(alice, strings.Repeat("k", 256), content), 400, "bad_request")

		// While the first is still streaming: 409.
		pr, pw := io.Pipe()
		ct, body = multipartBody(nil, "slow.txt", text(2<<20))
		done := make(chan *http.Response, 1)
		go func() {
			done <- s.do(t, alice, "POST", "/upload?purpose=attachment", pr, map[string]string{"Content-Type": ct, "Idempotency-Key": "slow"})
		}()
		pw.Write(body[:1<<20])
		eventually(t, "the first upload to be recorded", func() bool {
			n, _ := s.db.MediaFile.Query().Where(mediafile.StatusEQ(mediafile.StatusPending)).Count(context.Background())
			return n == 1
		})
		expectProblem(t, post(alice, "slow", text(10)), 409, "in_progress")
		pw.Write(body[1<<20:])
		pw.Close()
		decode(t, <-done, 201, nil)
	})
}

func TestReconcileFindsAndFixes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		out, err := s.command(t, "reconcile")
		if err != nil || !strings.Contains(out, "missing objects: 0\norphan objects: 0") {
			t.Fatalf("empty store: %v\n%s", err, out)
		}
		keep := s.mustUpload(t, alice, "attachment", "keep.txt", text(100))
		lost := s.mustUpload(t, alice, "attachment", "lost.txt", text(100))
		avatar := s.mustUpload(t, alice, "avatar", "me.jpg", imageFixture())
		ctx := context.Background()
		if err := s.store.Delete(ctx, lost.Key); err != nil { // an object deleted by hand
			t.Fatal(err)
		}
		orphan := fmt.Sprintf("t_acme/attachment/2026/12/%s.txt", media.NewID())
		if err := s.store.Put(ctx, orphan, strings.NewReader("stray"), storage.Meta{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		if err := s.store.Put(ctx, "not-ours/readme.txt", strings.NewReader("x"), storage.Meta{}); err != nil {
			t.Fatal(err)
		}
		out, err = s.command(t, "reconcile")
		if !errors.Is(err, errFound) {
			t.Fatalf("reconcile: %v\n%s", err, out)
		}
		for _, want := range []string{"rows checked: 3", "objects checked: 6", "missing objects: 1", "orphan objects: 1", lost.ID, orphan} {
			if !strings.Contains(out, want) {
				t.Errorf("reconcile output lacks %q:\n%s", want, out)
			}
		}
		out, err = s.command(t, "reconcile", "--fix")
		if !errors.Is(err, errFound) || !strings.Contains(out, "fixed") {
			t.Fatalf("reconcile --fix: %v\n%s", err, out)
		}
		out, err = s.command(t, "reconcile")
		if err != nil || !strings.Contains(out, "missing objects: 0\norphan objects: 0") {
			t.Fatalf("after --fix: %v\n%s", err, out)
		}
		var f media.File
		decode(t, s.do(t, alice, "GET", "/files/"+lost.ID, nil, nil), 200, &f)
		if f.Status != "failed" {
			t.Fatalf("lost file is %s", f.Status)
		}
		for _, f := range []media.File{keep, avatar} {
			decode(t, s.do(t, alice, "GET", "/files/"+f.ID, nil, nil), 200, nil)
		}
		if _, err := s.store.Stat(ctx, "not-ours/readme.txt"); err != nil {
			t.Fatal("reconcile touched an object outside the service's layout")
		}
		if _, err := s.command(t, "reconcile", "--force"); err == nil || errors.Is(err, errFound) {
			t.Fatalf("bad arguments: %v", err)
		}
	})
}

func TestReaperHealsWhatACrashLeaves(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, map[string]string{"REAP_INTERVAL": "200ms", "REAP_PENDING_AFTER": "2s"})
		ctx := context.Background()
		old := time.Now().Add(-time.Hour).UTC()
		// A pending row with its object, as a crash between Put and ready leaves them.
		id := media.NewID()
		key := media.ObjectKey("users/u_alice", media.Attachment, old, id, "txt")
		if err := s.store.Put(ctx, key, strings.NewReader("half"), storage.Meta{}); err != nil {
			t.Fatal(err)
		}
		s.db.MediaFile.Create().SetID(id).SetUserID("u_alice").SetScope("users/u_alice").SetPurpose(mediafile.PurposeAttachment).
			SetKey(key).SetStatus(mediafile.StatusPending).SetCreatedAt(old).SetUpdatedAt(old).ExecX(ctx)
		// A row left deleting, with its object.
		gone := s.mustUpload(t, alice, "attachment", "gone.txt", text(10))
		s.db.MediaFile.UpdateOneID(gone.ID).SetStatus(mediafile.StatusDeleting).SetUpdatedAt(old).ExecX(ctx)
		// An upload in the store that nobody finished.
		stale := fmt.Sprintf("users/u_alice/attachment/2026/12/%s.txt", media.NewID())
		if s.s3 != nil {
			_, err := s.s3.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.s3.Bucket), Key: aws.String(stale)})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			tmp := filepath.Join(s.cfg.BlobDir(), "users/u_alice/attachment/2026/12", ".tmp-1-"+filepath.Base(stale))
			os.MkdirAll(filepath.Dir(tmp), 0o755)
			os.WriteFile(tmp, []byte("partial"), 0o644)
			os.Chtimes(tmp, old, old)
		}
		eventually(t, "the reaper", func() bool {
			r, err := s.db.MediaFile.Get(ctx, id)
			if err != nil || r.Status != mediafile.StatusFailed {
				return false
			}
			if _, err := s.db.MediaFile.Get(ctx, gone.ID); err == nil {
				return false
			}
			ups, err := s.store.Uploads(ctx, time.Now().Add(time.Hour))
			return err == nil && len(ups) == 0
		})
		keep := s.objects(t)
		if len(keep) != 0 {
			t.Fatalf("objects left: %v", keep)
		}
		if out, err := s.command(t, "reconcile"); err != nil {
			t.Fatalf("reconcile after the reaper: %v\n%s", err, out)
		}
	})
}

func TestDatabaseDownAnswers503BeforeStoringAnything(t *testing.T) {
	s := start(t, backend{"postgres", "s3"}, nil)
	s.mustUpload(t, alice, "attachment", "before.txt", text(10))
	u, _ := url.Parse(s.env["DATABASE_URL"])
	dbname := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	adb, err := sql.Open("pgx", admin.String())
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	setConnections := func(allow bool) {
		if _, err := adb.Exec(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS %v`, dbname, allow)); err != nil {
			t.Fatal(err)
		}
		if !allow {
			adb.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbname)
		}
	}
	before := s.objects(t)
	setConnections(false)
	expectProblem(t, s.upload(t, alice, "attachment", "during.txt", text(1000)), 503, "unavailable")
	expectProblem(t, s.do(t, alice, "GET", "/files", nil, nil), 503, "unavailable")
	if p := expectProblem(t, s.do(t, who{}, "GET", "/ready", nil, nil), 503, "unavailable"); !strings.Contains(p.Detail, "database") {
		t.Errorf("ready detail %q", p.Detail)
	}
	if after := s.objects(t); len(after) != len(before) {
		t.Fatalf("objects stored while the database was down: %v", after)
	}
	setConnections(true)
	s.db.Close()
	s.db, _ = openDatabase(context.Background(), s.cfg)
	s.mustUpload(t, alice, "attachment", "after.txt", text(10))
}

func TestClientDisconnectsAtAnyPoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		ct, body := multipartBody(nil, "big.txt", text(12<<20))
		for i, frac := range []float64{0.10, 0.50, 0.99} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u_alice\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ct, len(body))
			conn.Write(body[:int(float64(len(body))*frac)])
			eventually(t, "the upload to start", func() bool { return len(s.rows(t)) == i+1 })
			time.Sleep(100 * time.Millisecond)
			conn.Close()
			eventually(t, fmt.Sprintf("the row cut at %.0f%% to fail", frac*100), func() bool {
				for _, r := range s.rows(t) {
					if r.Status != mediafile.StatusFailed {
						return false
					}
				}
				return true
			})
		}
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects left: %v", keys)
		}
		if s.s3 != nil {
			eventually(t, "no open multipart upload", func() bool { return len(s.s3.OpenUploads(t)) == 0 })
		}
	})
}

func imageFixture() []byte { return imagerytest.CameraJPEG(320, 240, 1, 90) }
