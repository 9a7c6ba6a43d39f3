package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/testsvc"
)

// s3Env is the configuration of a mediad on PostgreSQL and versitygw.
func s3Env(t *testing.T, s3 *testsvc.S3Server) map[string]string {
	return map[string]string{
		"DATA_DIR": t.TempDir(), "DATABASE_URL": testsvc.Postgres(t), "STORAGE": "s3",
		"S3_ENDPOINT": s3.Endpoint, "S3_REGION": s3.Region, "S3_BUCKET": s3.Bucket,
		"S3_ACCESS_KEY_ID": s3.AccessKey, "S3_SECRET_ACCESS_KEY": s3.SecretKey, "S3_PATH_STYLE": "true",
		"PUBLIC_MEDIA_URL": s3.Endpoint + "/" + s3.Bucket, "S3_PART_SIZE": fmt.Sprint(5 << 20),
		"MAX_ATTACHMENT_BYTES": fmt.Sprint(300 << 20), "LOG_LEVEL": "info",
		"RATE_LIMIT_UPLOADS_PER_MINUTE": "100000", "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
	}
}

// streamBody is a chunked multipart upload of size bytes of text, made on
// the fly; progress receives the bytes written so far.
func streamBody(size int64, progress func(int64)) (string, io.Reader) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.txt")
		bw := bufio.NewWriterSize(fw, 256<<10)
		line := []byte("a line of a large upload that mediad streams once to the store.\n")
		var n int64
		for n < size {
			chunk := line[:min(int64(len(line)), size-n)]
			if _, err := bw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
			n += int64(len(chunk))
			if progress != nil && n%(1<<20) < int64(len(line)) {
				progress(n)
			}
		}
		bw.Flush()
		pw.CloseWithError(mw.Close())
	}()
	return mw.FormDataContentType(), pr
}

func TestKill9MidUploadIsHealed(t *testing.T) {
	s3 := testsvc.S3(t)
	env := s3Env(t, s3)
	p := startProcess(t, env)
	db, err := openDatabase(context.Background(), loadConfig(t, env))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	killed := make(chan struct{})
	ct, body := streamBody(200<<20, func(n int64) {
		if n >= 60<<20 {
			select {
			case <-killed:
			default:
				close(killed)
				p.kill() // kill -9 with 60 MiB of 200 sent
			}
		}
	})
	req, _ := http.NewRequest("POST", p.URL()+"/upload?purpose=attachment", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("x-user-id", "u_alice")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the upload survived kill -9: %d", resp.StatusCode)
	}
	rows, _ := db.MediaFile.Query().All(context.Background())
	if len(rows) != 1 || rows[0].Status != mediafile.StatusPending || len(s3.OpenUploads(t)) != 1 {
		t.Fatalf("after kill -9: rows %v, open uploads %v", rows, s3.OpenUploads(t))
	}

	// Restarted with a short REAP_PENDING_AFTER, the reaper heals it.
	env["REAP_PENDING_AFTER"], env["REAP_INTERVAL"] = "2s", "300ms"
	p.start()
	eventually(t, "the reaper to fail the row and abort the upload", func() bool {
		r, err := db.MediaFile.Get(context.Background(), rows[0].ID)
		return err == nil && r.Status == mediafile.StatusFailed && len(s3.OpenUploads(t)) == 0
	})
	if keys := s3.Keys(t); len(keys) != 0 {
		t.Fatalf("objects left: %v", keys)
	}
	out, err := runCommand(t, env, "reconcile")
	if err != nil || !strings.Contains(out, "missing objects: 0\norphan objects: 0") {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	// And it serves again.
	ct, body = streamBody(1<<20, nil)
	req, _ = http.NewRequest("POST", p.URL()+"/upload?purpose=attachment", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("x-user-id", "u_alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestSIGTERMLetsTheUploadFinish(t *testing.T) {
	s3 := testsvc.S3(t)
	p := startProcess(t, s3Env(t, s3))
	termed := make(chan error, 1)
	once := false
	ct, body := streamBody(30<<20, func(n int64) {
		if n >= 10<<20 && !once {
			once = true
			go func() { termed <- p.term() }()
			time.Sleep(200 * time.Millisecond)
		}
	})
	req, _ := http.NewRequest("POST", p.URL()+"/upload?purpose=attachment", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("x-user-id", "u_alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := <-termed; err != nil {
		t.Fatalf("mediad exited with %v after SIGTERM", err)
	}
}

func TestShutdownGraceCutsUploadsToFailed(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, map[string]string{"SHUTDOWN_GRACE": "1s"})
	pr, pw := io.Pipe()
	ct, body := multipartBody(nil, "slow.txt", text(4<<20))
	go func() {
		pw.Write(body[:1<<20]) // and then nothing: the client stalls
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", s.URL+"/upload?purpose=attachment", pr)
		req.Header.Set("Content-Type", ct)
		alice.set(req.Header)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the upload to start", func() bool { return len(s.rows(t)) == 1 })
	start := time.Now()
	if err := s.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("shutdown took %s with a 1 s grace", time.Since(start))
	}
	pw.Close()
	<-done
	rows := s.rows(t)
	if len(rows) != 1 || rows[0].Status != mediafile.StatusFailed {
		t.Fatalf("rows %+v", rows)
	}
}
