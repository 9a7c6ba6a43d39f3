package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// metaDir holds one JSON sidecar per object (its content type). Keys never
// start with a dot, so it cannot collide with an object.
const metaDir = ".meta"

// Disk keeps objects as files under one directory. Every path goes through
// an os.Root, so no key can reach outside it.
type Disk struct {
	root *os.Root
}

// NewDisk opens (creating it if needed) the directory dir.
func NewDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("disk store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("disk store: %w", err)
	}
	return &Disk{root: root}, nil
}

// Close releases the directory.
func (d *Disk) Close() error { return d.root.Close() }

type diskMeta struct {
	ContentType string `json:"contentType"`
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, ".") || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") ||
		strings.ContainsRune(key, 0) || path.Clean(key) != key || strings.Contains("/"+key+"/", "/../") || strings.Contains("/"+key, "/.") {
		return fmt.Errorf("invalid object key %q", key)
	}
	return nil
}

// Put writes to a temporary file beside the target, syncs it and renames it
// into place, so a reader never sees a partial object.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, meta Meta) (err error) {
	if err := checkKey(key); err != nil {
		return err
	}
	dir := path.Dir(key)
	if err := d.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	tmp := path.Join(dir, fmt.Sprintf(".tmp-%d-%s", time.Now().UnixNano(), path.Base(key)))
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.root.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	if err = d.writeMeta(key, diskMeta{ContentType: meta.ContentType}); err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	if err = d.root.Rename(tmp, key); err != nil {
		return fmt.Errorf("disk put %s: %w", key, err)
	}
	return nil
}

func (d *Disk) writeMeta(key string, m diskMeta) error {
	name := path.Join(metaDir, key+".json")
	if err := d.root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(m)
	return d.root.WriteFile(name, b, 0o644)
}

// Delete removes the objects and their sidecars.
func (d *Disk) Delete(ctx context.Context, keys ...string) error {
	var errs []error
	for _, key := range keys {
		if err := checkKey(key); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := d.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("disk delete %s: %w", key, err))
			continue
		}
		if err := d.root.Remove(path.Join(metaDir, key+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("disk delete %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// Stat describes the object at key.
func (d *Disk) Stat(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return Object{}, err
	}
	fi, err := d.root.Stat(key)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, ErrNotFound
	}
	if err != nil {
		return Object{}, fmt.Errorf("disk stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, ErrNotFound
	}
	obj := Object{Key: key, Size: fi.Size(), Modified: fi.ModTime().UTC(), ContentType: "application/octet-stream"}
	if b, err := d.root.ReadFile(path.Join(metaDir, key+".json")); err == nil {
		var m diskMeta
		if json.Unmarshal(b, &m) == nil && m.ContentType != "" {
			obj.ContentType = m.ContentType
		}
	}
	return obj, nil
}

// Open reads the object at key.
func (d *Disk) Open(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	obj, err := d.Stat(ctx, key)
	if err != nil {
		return nil, Object{}, err
	}
	f, err := d.root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Object{}, ErrNotFound
	}
	if err != nil {
		return nil, Object{}, fmt.Errorf("disk open %s: %w", key, err)
	}
	return f, obj, nil
}

// Ping checks that the directory is still there.
func (d *Disk) Ping(ctx context.Context) error {
	if _, err := d.root.Stat("."); err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	return nil
}

// Handler serves GET /blobs/{key...}: the local stand-in for the public
// media domain. Images are shown inline; anything else is a download, and
// nothing is ever sniffed by the browser.
func (d *Disk) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		rc, obj, err := d.Open(r.Context(), key)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer rc.Close()
		h := w.Header()
		h.Set("Content-Type", obj.ContentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		if !isInlineImage(obj.ContentType) {
			h.Set("Content-Disposition", "attachment")
		}
		http.ServeContent(w, r, "", obj.Modified, rc.(io.ReadSeeker))
	})
}

func isInlineImage(contentType string) bool {
	switch strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]) {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return true
	}
	return false
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
