package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/imagery/imagerytest"
	"github.com/logicspike/mediad/internal/media"
)

// hostile is one request an attacker (or a broken client) might send.
type hostile struct {
	name    string
	as      who
	method  string
	path    string
	headers map[string]string
	body    []byte
	status  int
}

// form builds a multipart body from parts written by f.
func form(f func(mw *multipart.Writer)) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	f(mw)
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func filePart(mw *multipart.Writer, field, filename string, content []byte) {
	w, _ := mw.CreateFormFile(field, filename)
	w.Write(content)
}

func upload(name, purpose string, as who, status int, f func(mw *multipart.Writer)) hostile {
	ct, body := form(f)
	return hostile{name: name, as: as, method: "POST", path: "/upload?purpose=" + purpose, headers: map[string]string{"Content-Type": ct}, body: body, status: status}
}

func TestHostileRequests(t *testing.T) {
	jpg := imagerytest.CameraJPEG(200, 150, 1, 90)
	ct, good := form(func(mw *multipart.Writer) { filePart(mw, "file", "a.txt", text(100)) })
	boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
	cases := []hostile{
		{name: "no content type", as: alice, method: "POST", path: "/upload?purpose=attachment", body: good, status: 400},
		{name: "text/plain body", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": "text/plain"}, body: text(100), status: 400},
		{name: "multipart without boundary", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": "multipart/form-data"}, body: good, status: 400},
		{name: "wrong boundary", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": "multipart/form-data; boundary=nope"}, body: good, status: 400},
		{name: "multipart/mixed", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": "multipart/mixed; boundary=" + boundary}, body: good, status: 400},
		{name: "no closing boundary", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": ct}, body: good[:len(good)-len(boundary)-8], status: 400},
		{name: "empty body", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": ct}, status: 400},
		{name: "boundary of 200 characters", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": "multipart/form-data; boundary=" + strings.Repeat("b", 200)}, body: good, status: 400},
		upload("empty file", "attachment", alice, 400, func(mw *multipart.Writer) { filePart(mw, "file", "a.txt", nil) }),
		upload("two file parts", "attachment", alice, 400, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.txt", text(10))
			filePart(mw, "file", "b.txt", text(10))
		}),
		upload("a file part after the file", "attachment", alice, 400, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.txt", text(10))
			filePart(mw, "other", "b.txt", text(10))
		}),
		upload("file part not named file", "attachment", alice, 400, func(mw *multipart.Writer) { filePart(mw, "upload", "a.txt", text(10)) }),
		upload("only text fields", "attachment", alice, 400, func(mw *multipart.Writer) { mw.WriteField("name", "x") }),
		upload("20 parts", "attachment", alice, 400, func(mw *multipart.Writer) {
			for i := range 20 {
				mw.WriteField(fmt.Sprint("f", i), "x")
			}
			filePart(mw, "file", "a.txt", text(10))
		}),
		upload("a 5 KiB text field", "attachment", alice, 400, func(mw *multipart.Writer) {
			mw.WriteField("name", strings.Repeat("x", 5<<10))
			filePart(mw, "file", "a.txt", text(10))
		}),
		upload("HTML named .txt", "attachment", alice, 415, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.txt", []byte("<html><head><script>alert(1)</script></head></html>"))
		}),
		upload("SVG with a script", "attachment", alice, 415, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`))
		}),
		upload("ELF executable", "attachment", alice, 415, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.pdf", append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), make([]byte, 200)...))
		}),
		upload("Windows executable", "attachment", alice, 415, func(mw *multipart.Writer) {
			filePart(mw, "file", "invoice.pdf", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), make([]byte, 200)...))
		}),
		upload("shell script", "attachment", alice, 415, func(mw *multipart.Writer) { filePart(mw, "file", "a.txt", []byte("#!/bin/sh\nrm -rf /\n")) }),
		upload("purpose with a path", "../../etc", alice, 400, func(mw *multipart.Writer) { filePart(mw, "file", "a.txt", text(10)) }),
		upload("no purpose", "", alice, 400, func(mw *multipart.Writer) { filePart(mw, "file", "a.txt", text(10)) }),
		upload("PDF as an avatar", "avatar", alice, 415, func(mw *multipart.Writer) { filePart(mw, "file", "a.jpg", []byte("%PDF-1.4\n1 0 obj\n")) }),
		upload("logo without a tenant", "logo", alice, 403, func(mw *multipart.Writer) { filePart(mw, "file", "a.jpg", jpg) }),
		upload("decompression bomb", "avatar", alice, 422, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.png", imagerytest.PNGHeaderOnly(30000, 30000))
		}),
		upload("truncated JPEG", "avatar", alice, 422, func(mw *multipart.Writer) { filePart(mw, "file", "a.jpg", jpg[:len(jpg)/3]) }),
		upload("JPEG header then garbage", "avatar", alice, 422, func(mw *multipart.Writer) {
			filePart(mw, "file", "a.jpg", append(append([]byte{}, jpg[:600]...), bytes.Repeat([]byte{0xff, 0x00}, 4000)...))
		}),
		upload("attachment over the limit", "attachment", alice, 413, func(mw *multipart.Writer) { filePart(mw, "file", "a.txt", text(3<<20)) }),
		{name: "bad cursor", as: alice, method: "GET", path: "/files?cursor=%ff%fe", status: 400},
		{name: "negative limit", as: alice, method: "GET", path: "/files?limit=-1", status: 400},
		{name: "huge limit", as: alice, method: "GET", path: "/files?limit=99999999999999999999", status: 400},
		{name: "id with a path", as: alice, method: "GET", path: "/files/..%2F..%2Fetc%2Fpasswd", status: 404},
		{name: "id of 1000 characters", as: alice, method: "GET", path: "/files/" + strings.Repeat("a", 1000), status: 404},
		{name: "delete a NUL id", as: alice, method: "DELETE", path: "/files/%00", status: 404},
		{name: "variant with a path", as: alice, method: "GET", path: "/files/abc/variants/..%2F..", status: 404},
		{name: "user id with a slash", as: who{user: "../../admin"}, method: "GET", path: "/files", status: 401},
		{name: "tenant id of 200 characters", as: who{user: "u_1", tenant: strings.Repeat("t", 200)}, method: "GET", path: "/files", status: 401},
		{name: "usage without admin", as: alice, method: "GET", path: "/admin/usage", status: 403},
		{name: "non-ASCII idempotency key", as: alice, method: "POST", path: "/upload?purpose=attachment", headers: map[string]string{"Content-Type": ct, "Idempotency-Key": "clé"}, body: good, status: 400},
		{name: "blob path traversal", method: "GET", path: "/blobs/..%2F..%2Fmediad.db", status: 404},
		{name: "blob sidecar", method: "GET", path: "/blobs/.meta/x.json", status: 404},
		{name: "avatar size with a path", method: "GET", path: "/users/u_alice/avatar?size=../../x", status: 400},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	s := start(t, backend{"sqlite", "disk"}, map[string]string{"MAX_ATTACHMENT_BYTES": fmt.Sprint(2 << 20)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
			}
			resp := s.do(t, c.as, c.method, c.path, body, c.headers)
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, got)
			}
			if c.method != "GET" || !strings.HasPrefix(c.path, "/blobs/") {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" && resp.StatusCode != 404 {
					t.Errorf("content type %q", ct)
				}
			}
		})
	}
	// Nothing of all that was stored, and nothing is left pending.
	for _, r := range s.rows(t) {
		if r.Status != mediafile.StatusFailed {
			t.Errorf("row %s (%s) is %s", r.ID, r.Filename, r.Status)
		}
	}
	if keys := s.objects(t); len(keys) != 0 {
		t.Fatalf("objects stored: %v", keys)
	}
}

// Names are sanitised, not refused: they are metadata only.
func TestHostileFilenamesAreSanitised(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, nil)
	for raw, want := range map[string]string{
		"../../etc/passwd.txt":                             "passwd.txt",
		`..\..\windows\win.ini.txt`:                        "win.ini.txt",
		"a\x00b.txt":                                       "ab.txt",
		"evil\r\nSet-Cookie: x=1.txt":                      "evil%0D%0ASet-Cookie: x=1.txt",
		strings.Repeat("n", 1000) + ".txt":                 strings.Repeat("n", 251) + ".txt",
		"a\r\nContent-Type: text/html\r\n\r\n<script>.txt": "html%0D%0A%0D%0A<script>.txt", // the client escapes CR LF; / splits
	} {
		resp := s.upload(t, alice, "attachment", raw, text(10))
		if resp.StatusCode == 400 { // refused is fine too
			t.Logf("%q refused", raw)
			continue
		}
		var f media.File
		decode(t, resp, 201, &f)
		if f.Filename != want || strings.Contains(f.Key, "passwd") || strings.Contains(f.Key, "..") {
			t.Errorf("%q: filename %q key %q", raw, f.Filename, f.Key)
		}
	}
}

// A raw, malformed HTTP request never reaches a 500.
func TestMalformedRawRequests(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, nil)
	for _, raw := range []string{
		"POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u_1\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u_1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n",
		"POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u\x01\r\n\r\n",
		"POST /upload?purpose=attachment HTTP/1.1\r\nHost: x\r\nx-user-id: u_1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 60\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(raw))
		if c, ok := conn.(*net.TCPConn); ok {
			c.CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err == nil && resp.StatusCode >= 500 {
			t.Errorf("%q: %d", raw[:40], resp.StatusCode)
		}
	}
	for _, r := range s.rows(t) {
		if r.Status != mediafile.StatusFailed {
			t.Errorf("row %s is %s", r.ID, r.Status)
		}
	}
}
