package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/media"
	"github.com/logicspike/mediad/internal/storage"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// text makes n bytes of plain text.
func text(n int) []byte {
	line := []byte("the quick brown fox jumps over the lazy dog 0123456789\n")
	return bytes.Repeat(line, n/len(line)+1)[:n]
}

func TestUploadListGetDownloadDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		content := text(300_000)
		f := s.mustUpload(t, alice, "attachment", "../../notes.txt", content)

		if f.Status != "ready" || f.Purpose != "attachment" || f.Scope != "users/u_alice" || f.UserID != "u_alice" || f.TenantID != nil {
			t.Fatalf("file %+v", f)
		}
		if f.ContentType != "text/plain; charset=utf-8" || f.Size != int64(len(content)) || f.SHA256 != sum(content) || f.Filename != "notes.txt" {
			t.Fatalf("file %+v", f)
		}
		keyRE := regexp.MustCompile(`^users/u_alice/attachment/\d{4}/\d{2}/` + regexp.QuoteMeta(f.ID) + `\.txt$`)
		base := s.cfg.PublicURL()
		if b.store == "disk" {
			base = s.URL + "/blobs"
		}
		if !keyRE.MatchString(f.Key) || f.URL != base+"/"+f.Key || f.Width != nil || f.Variants != nil {
			t.Fatalf("key %q url %q", f.Key, f.URL)
		}

		var page media.Page
		decode(t, s.do(t, alice, "GET", "/files", nil, nil), 200, &page)
		if len(page.Files) != 1 || page.Files[0].ID != f.ID || page.NextCursor != nil {
			t.Fatalf("list %+v", page)
		}
		var got media.File
		decode(t, s.do(t, alice, "GET", "/files/"+f.ID, nil, nil), 200, &got)
		if got.ID != f.ID || got.SHA256 != f.SHA256 || !got.CreatedAt.Equal(f.CreatedAt) {
			t.Fatalf("get %+v", got)
		}

		// The bytes in the store are the bytes sent.
		rc, obj, err := s.store.Open(context.Background(), f.Key)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := io.ReadAll(rc)
		rc.Close()
		if sum(stored) != f.SHA256 || !strings.HasPrefix(obj.ContentType, "text/plain") {
			t.Fatalf("stored %d bytes of %s, sha %s", len(stored), obj.ContentType, sum(stored))
		}
		if b.store == "disk" { // the public URL serves them, safely
			resp := s.do(t, who{}, "GET", strings.TrimPrefix(f.URL, s.URL), nil, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || sum(body) != f.SHA256 || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
				resp.Header.Get("Content-Disposition") != "attachment" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("blob: %d %v", resp.StatusCode, resp.Header)
			}
		}

		resp := s.do(t, alice, "GET", "/files/"+f.ID+"/variants/original", nil, nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != f.URL {
			t.Fatalf("original redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		expectProblem(t, s.do(t, alice, "GET", "/files/"+f.ID+"/variants/lg", nil, nil), 404, "not_found")

		if resp := s.do(t, alice, "DELETE", "/files/"+f.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		expectProblem(t, s.do(t, alice, "GET", "/files/"+f.ID, nil, nil), 404, "not_found")
		expectProblem(t, s.do(t, alice, "DELETE", "/files/"+f.ID, nil, nil), 404, "not_found")
		if _, err := s.store.Stat(context.Background(), f.Key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("object still there: %v", err)
		}
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects left: %v", keys)
		}
		if rows := s.rows(t); len(rows) != 0 {
			t.Fatalf("rows left: %v", rows)
		}
	})
}

func TestPagesHaveNoDuplicatesOrGaps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		var ids []string
		for i := range 25 {
			ids = append(ids, s.mustUpload(t, alice, "attachment", fmt.Sprintf("f%d.txt", i), text(100+i)).ID)
		}
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			var p media.Page
			decode(t, s.do(t, alice, "GET", "/files?limit=10&cursor="+cursor, nil, nil), 200, &p)
			want := []int{10, 10, 5}[page]
			if len(p.Files) != want {
				t.Fatalf("page %d has %d files, want %d", page, len(p.Files), want)
			}
			for _, f := range p.Files {
				seen = append(seen, f.ID)
			}
			if page == 0 { // files added meanwhile do not move later pages
				s.mustUpload(t, alice, "attachment", "late.txt", text(10))
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		if len(seen) != 25 {
			t.Fatalf("saw %d files", len(seen))
		}
		for i, id := range seen { // newest first: the reverse of upload order
			if id != ids[24-i] {
				t.Fatalf("position %d: %s, want %s", i, id, ids[24-i])
			}
		}
		var p media.Page
		decode(t, s.do(t, alice, "GET", "/files?limit=100&purpose=attachment", nil, nil), 200, &p)
		if len(p.Files) != 26 {
			t.Fatalf("limit 100 gives %d", len(p.Files))
		}
		decode(t, s.do(t, alice, "GET", "/files?purpose=avatar", nil, nil), 200, &p)
		if len(p.Files) != 0 {
			t.Fatalf("avatars: %d", len(p.Files))
		}
		for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=garbage", "purpose=video", "status=lost"} {
			expectProblem(t, s.do(t, alice, "GET", "/files?"+q, nil, nil), 400, "bad_request")
		}
	})
}

func TestSpoofedTypesAreRefusedBeforeAnythingIsStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		for name, content := range map[string]string{
			"evil.png": "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>",
			"pic.jpg":  `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`,
			"doc.pdf":  "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + strings.Repeat("\x00", 200),
		} {
			p := expectProblem(t, s.upload(t, alice, "attachment", name, []byte(content)), 415, "unsupported_media_type")
			if !strings.Contains(p.Detail, "detected type") || !strings.Contains(p.Detail, "application/pdf") {
				t.Errorf("%s: detail %q names neither the detected nor the accepted types", name, p.Detail)
			}
		}
		if p := expectProblem(t, s.upload(t, alice, "attachment", "evil.png", []byte("<html><body>x</body></html>")), 415, "unsupported_media_type"); !strings.Contains(p.Detail, "text/html") {
			t.Errorf("detail %q", p.Detail)
		}
		if rows, keys := s.rows(t), s.objects(t); len(rows) != 0 || len(keys) != 0 {
			t.Fatalf("rows %v, objects %v", rows, keys)
		}
	})
}

func TestTooLargeMidStreamOnAChunkedBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, map[string]string{"MAX_ATTACHMENT_BYTES": fmt.Sprint(6 << 20)})
		ct, body := multipartBody(nil, "big.txt", text(13<<20))
		req, _ := http.NewRequest("POST", s.URL+"/upload?purpose=attachment", io.MultiReader(bytes.NewReader(body)))
		req.ContentLength, req.TransferEncoding = -1, []string{"chunked"} // no Content-Length to refuse it by
		req.Header.Set("Content-Type", ct)
		alice.set(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		expectProblem(t, resp, 413, "too_large")
		rows := s.rows(t)
		if len(rows) != 1 || rows[0].Status != mediafile.StatusFailed || !strings.Contains(rows[0].FailureReason, "larger than") {
			t.Fatalf("rows %+v", rows)
		}
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects left: %v", keys)
		}
		if s.s3 != nil {
			if up := s.s3.OpenUploads(t); len(up) != 0 {
				t.Fatalf("open multipart uploads: %v", up)
			}
		}
		// Declared far too large: refused before a byte of the body is read.
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u_alice\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ct, 50<<20)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		early, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no early answer: %v", err)
		}
		expectProblem(t, early, 413, "too_large")
		// Declared too large: refused the same way.
		ct, body = multipartBody(nil, "big.txt", text(7<<20))
		expectProblem(t, s.do(t, alice, "POST", "/upload?purpose=attachment", bytes.NewReader(body), map[string]string{"Content-Type": ct}), 413, "too_large")
	})
}

func TestClientDisconnectMidBodyLeavesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		ct, body := multipartBody(nil, "big.bin.txt", text(20<<20))
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u_alice\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ct, len(body))
		conn.Write(body[:12<<20]) // past two 5 MiB parts: a multipart upload is open on S3
		eventually(t, "the upload to start", func() bool { return len(s.rows(t)) == 1 })
		time.Sleep(200 * time.Millisecond)
		conn.Close()

		eventually(t, "the row to fail", func() bool {
			rows := s.rows(t)
			return len(rows) == 1 && rows[0].Status == mediafile.StatusFailed
		})
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects left: %v", keys)
		}
		if s.s3 != nil {
			eventually(t, "no open multipart upload", func() bool { return len(s.s3.OpenUploads(t)) == 0 })
		}
	})
}

func TestStoreDownDuringUpload(t *testing.T) {
	s := start(t, backend{"postgres", "s3"}, nil)
	ct, body := multipartBody(nil, "big.txt", text(16<<20))
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:11<<20])
		eventually(t, "the upload to start", func() bool { return len(s.rows(t)) == 1 })
		s.s3.Stop()
		pw.Write(body[11<<20:])
		pw.Close()
	}()
	resp := s.do(t, alice, "POST", "/upload?purpose=attachment", pr, map[string]string{"Content-Type": ct})
	expectProblem(t, resp, 502, "storage_unavailable")
	rows := s.rows(t)
	if len(rows) != 1 || rows[0].Status != mediafile.StatusFailed {
		t.Fatalf("rows %+v", rows)
	}
	// With the store still down, small uploads fail the same way; readiness says why.
	expectProblem(t, s.upload(t, alice, "attachment", "small.txt", text(100)), 502, "storage_unavailable")
	p := expectProblem(t, s.do(t, who{}, "GET", "/ready", nil, nil), 503, "unavailable")
	if !strings.Contains(p.Detail, "storage") {
		t.Fatalf("ready detail %q", p.Detail)
	}
	for _, r := range s.rows(t) {
		if r.Status != mediafile.StatusFailed {
			t.Fatalf("row %s is %s", r.ID, r.Status)
		}
	}
	// Back up: uploads work again.
	s.s3.Start(t)
	s.mustUpload(t, alice, "attachment", "again.txt", text(100))
}

func TestScopes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		acme := who{user: "u_alice", tenant: "t_acme"}
		globex := who{user: "u_bob", tenant: "t_globex"}
		f := s.mustUpload(t, acme, "attachment", "plan.txt", text(50))
		if f.Scope != "t_acme" || f.TenantID == nil || *f.TenantID != "t_acme" || !strings.HasPrefix(f.Key, "t_acme/attachment/") {
			t.Fatalf("tenant file %+v", f)
		}
		// Another tenant, or the same user outside the tenant, sees nothing.
		for _, other := range []who{globex, {user: "u_alice"}, {user: "u_bob", tenant: "t_acme2"}} {
			expectProblem(t, s.do(t, other, "GET", "/files/"+f.ID, nil, nil), 404, "not_found")
			expectProblem(t, s.do(t, other, "DELETE", "/files/"+f.ID, nil, nil), 404, "not_found")
			expectProblem(t, s.do(t, other, "GET", "/files/"+f.ID+"/variants/original", nil, nil), 404, "not_found")
			var p media.Page
			decode(t, s.do(t, other, "GET", "/files", nil, nil), 200, &p)
			if len(p.Files) != 0 {
				t.Fatalf("%v sees %d files", other, len(p.Files))
			}
		}
		// Another member of the tenant sees it.
		decode(t, s.do(t, who{user: "u_carol", tenant: "t_acme"}, "GET", "/files/"+f.ID, nil, nil), 200, nil)
		expectProblem(t, s.do(t, acme, "GET", "/files/not-an-id", nil, nil), 404, "not_found")
		if len(s.objects(t)) != 1 {
			t.Fatal("a 404 delete removed something")
		}
	})
}

func TestIdentityIsRequired(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, nil)
	expectProblem(t, s.upload(t, who{}, "attachment", "a.txt", text(10)), 401, "unauthorized")
	expectProblem(t, s.do(t, who{}, "GET", "/files", nil, nil), 401, "unauthorized")
	expectProblem(t, s.do(t, who{user: "../etc"}, "GET", "/files", nil, nil), 401, "unauthorized")
	expectProblem(t, s.do(t, who{user: "u1", tenant: "a/b"}, "GET", "/files", nil, nil), 401, "unauthorized")
	if len(s.rows(t)) != 0 {
		t.Fatal("an unauthorised upload was recorded")
	}
}

func TestBadForms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		post := func(ct string, body []byte) *http.Response {
			return s.do(t, alice, "POST", "/upload?purpose=attachment", bytes.NewReader(body), map[string]string{"Content-Type": ct})
		}
		expectProblem(t, post("application/json", []byte(`{"file": "x"}`)), 400, "bad_request")
		expectProblem(t, post("multipart/form-data; boundary=xyz", []byte("garbage")), 400, "bad_request")
		ct, body := multipartBody([][2]string{{"name", "x"}}, "", nil)
		body = bytes.Replace(body, []byte(`name="file"; filename=""`), []byte(`name="other"`), 1)
		expectProblem(t, post(ct, body), 400, "bad_request")
		ct, body = multipartBody(nil, "empty.txt", nil)
		if p := expectProblem(t, post(ct, body), 400, "bad_request"); !strings.Contains(p.Detail, "empty") {
			t.Errorf("empty file detail %q", p.Detail)
		}
		expectProblem(t, s.upload(t, alice, "video", "a.txt", text(10)), 400, "bad_request")
		expectProblem(t, s.upload(t, alice, "", "a.txt", text(10)), 400, "bad_request")

		// Two file parts: refused, and the first one does not stay.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for i := range 2 {
			fw, _ := mw.CreateFormFile("file", fmt.Sprintf("f%d.txt", i))
			fw.Write(text(1000))
		}
		mw.Close()
		expectProblem(t, post(mw.FormDataContentType(), buf.Bytes()), 400, "bad_request")

		// Too many parts.
		buf.Reset()
		mw = multipart.NewWriter(&buf)
		for i := range 20 {
			mw.WriteField(fmt.Sprintf("f%d", i), "x")
		}
		fw, _ := mw.CreateFormFile("file", "a.txt")
		fw.Write(text(10))
		mw.Close()
		expectProblem(t, post(mw.FormDataContentType(), buf.Bytes()), 400, "bad_request")

		for _, r := range s.rows(t) {
			if r.Status == mediafile.StatusReady || r.Status == mediafile.StatusPending {
				t.Fatalf("row %s left %s", r.ID, r.Status)
			}
		}
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects left: %v", keys)
		}

		// Uppy's fields before the file, and purpose as a form field.
		ct, body = multipartBody([][2]string{{"purpose", "attachment"}, {"name", "a.txt"}, {"type", "text/plain"}, {"relativePath", "null"}}, "a.txt", text(10))
		decode(t, s.do(t, alice, "POST", "/upload", bytes.NewReader(body), map[string]string{"Content-Type": ct}), 201, nil)
	})
}

func TestOpsRoutes(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, nil)
	resp := s.do(t, who{}, "GET", "/health", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "Media Service OK" {
		t.Fatalf("health: %d %q", resp.StatusCode, body)
	}
	decode(t, s.do(t, who{}, "GET", "/ready", nil, nil), 200, nil)
	s.mustUpload(t, alice, "attachment", "a.txt", text(10))
	resp = s.do(t, who{}, "GET", "/metrics", nil, nil)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`mediad_uploads_total{purpose="attachment",result="created"} 1`)) {
		t.Fatalf("metrics: %d\n%s", resp.StatusCode, body)
	}
	expectProblem(t, s.do(t, alice, "GET", "/nowhere", nil, nil), 404, "not_found")
	if resp := s.do(t, who{}, "GET", "/health", nil, map[string]string{"X-Request-Id": "req-123"}); resp.Header.Get("X-Request-Id") != "req-123" {
		t.Fatalf("request id not echoed: %q", resp.Header.Get("X-Request-Id"))
	}
	if resp := s.do(t, who{}, "GET", "/files", nil, nil); len(resp.Header.Get("X-Request-Id")) < 16 {
		t.Fatal("no request id on an error")
	}
	resp = s.do(t, who{}, "GET", "/", nil, nil)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<title>mediad demo</title>")) {
		t.Fatalf("demo page: %d", resp.StatusCode)
	}
}

func TestGracefulShutdownFinishesInFlightUploads(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, nil)
	ct, body := multipartBody(nil, "slow.txt", text(4<<20))
	pr, pw := io.Pipe()
	stopped := make(chan error, 1)
	go func() {
		pw.Write(body[:1<<20])
		eventually(t, "the upload to start", func() bool { return len(s.rows(t)) == 1 })
		go func() { stopped <- s.stop(t) }() // SIGTERM
		time.Sleep(300 * time.Millisecond)
		pw.Write(body[1<<20:])
		pw.Close()
	}()
	resp := s.do(t, alice, "POST", "/upload?purpose=attachment", pr, map[string]string{"Content-Type": ct})
	var f media.File
	decode(t, resp, 201, &f)
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v", err)
	}
	if rows := s.rows(t); len(rows) != 1 || rows[0].Status != mediafile.StatusReady {
		t.Fatalf("rows %+v", rows)
	}
}

func TestConfigErrorsStopTheStart(t *testing.T) {
	err := run(context.Background(), []string{"mediad"}, func(k string) string {
		return map[string]string{"STORAGE": "ftp", "MAX_AVATAR_BYTES": "lots"}[k]
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "STORAGE") || !strings.Contains(err.Error(), "MAX_AVATAR_BYTES") {
		t.Fatalf("err = %v", err)
	}
}
