package app

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "modernc.org/sqlite"

	"github.com/logicspike/mediad/config"
	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/media"
	"github.com/logicspike/mediad/internal/ratelimit"
	"github.com/logicspike/mediad/internal/storage"
)

// FuzzUpload sends arbitrary multipart bodies (and boundaries) to POST
// /upload, on a real SQLite database and disk store: no input may answer
// 500, and none may leave a row pending or a row ready without its object.
func FuzzUpload(f *testing.F) {
	var valid bytes.Buffer
	mw := multipart.NewWriter(&valid)
	mw.SetBoundary("fuzzboundary")
	mw.WriteField("purpose", "attachment")
	w, _ := mw.CreateFormFile("file", "a.txt")
	w.Write([]byte("hello, fuzz\n"))
	mw.Close()
	f.Add("fuzzboundary", "attachment", valid.Bytes())
	f.Add("fuzzboundary", "avatar", valid.Bytes())
	f.Add("fuzzboundary", "", []byte("--fuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n\x89PNG\r\n\x1a\n\r\n--fuzzboundary--\r\n"))
	f.Add("b", "attachment", []byte("--b\r\n\r\n--b--"))
	f.Add("", "attachment", []byte{})

	dir := f.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "fuzz.db")+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		f.Fatal(err)
	}
	client := ent.NewClient(ent.Driver(entsql.OpenDB(dialect.SQLite, db)))
	defer client.Close()
	if err := client.Schema.Create(context.Background()); err != nil {
		f.Fatal(err)
	}
	store, err := storage.NewDisk(filepath.Join(dir, "blobs"))
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		f.Fatal(err)
	}
	svc := media.New(client, store, log, media.Config{
		PublicURL:       "http://localhost/blobs",
		MaxBytes:        map[media.Purpose]int64{media.Avatar: 1 << 20, media.Logo: 1 << 20, media.Attachment: 1 << 20},
		AttachmentTypes: cfg.AttachmentTypes,
		MaxImagePixels:  1_000_000,
		MasterMaxSide:   256,
		Variants:        map[media.Purpose][]media.Variant{media.Avatar: {{Name: "sm", Pixels: 32}}, media.Logo: {{Name: "sm", Pixels: 32}}},
	})
	h := NewServer(Deps{Config: cfg, Media: svc, Log: log, RateLimits: RateLimits{
		Limiter: ratelimit.NewLocal(), Requests: ratelimit.PerMinute(1 << 30), Uploads: ratelimit.PerMinute(1 << 30),
	}})

	f.Fuzz(func(t *testing.T, boundary, purpose string, body []byte) {
		req := httptest.NewRequest("POST", "/upload?purpose="+url.QueryEscape(purpose), bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		req.Header.Set("x-user-id", "u_fuzz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code != http.StatusCreated && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d without a problem document", rec.Code)
		}
		ctx := context.Background()
		if n, _ := client.MediaFile.Query().Where(mediafile.StatusEQ(mediafile.StatusPending)).Count(ctx); n != 0 {
			t.Fatalf("%d rows left pending", n)
		}
		ready, _ := client.MediaFile.Query().Where(mediafile.StatusEQ(mediafile.StatusReady)).All(ctx)
		for _, r := range ready {
			if _, err := store.Stat(ctx, r.Key); err != nil {
				t.Fatalf("ready row %s without its object: %v", r.ID, err)
			}
		}
	})
}
