// Package storage keeps objects: a small Store interface the core uses, and
// its two backends, chosen in main — S3 (Cloudflare R2 or any S3 API,
// s3.go) and a local directory (disk.go) for the embedded mode.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Stat and Open for a key with no object.
var ErrNotFound = errors.New("object not found")

// Meta describes an object being stored.
type Meta struct {
	ContentType string
}

// Object describes a stored object.
type Object struct {
	Key         string
	Size        int64
	ContentType string
	Modified    time.Time
}

// Store keeps objects under keys.
type Store interface {
	// Put streams r to key. It is all or nothing: when it returns an error
	// (r failed, ctx ended, the store failed) no object and no open upload
	// is left under key, as far as the store could be reached to clean up.
	Put(ctx context.Context, key string, r io.Reader, meta Meta) error
	// Delete removes the keys; a key with no object is not an error.
	Delete(ctx context.Context, keys ...string) error
	// Stat describes the object at key, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Object, error)
	// Open reads the object at key, or returns ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Ping tells whether the store answers (readiness).
	Ping(ctx context.Context) error

	// Walk calls fn for every object whose key starts with prefix ("" for
	// all), in key order (byte-wise, as S3 lists keys), reading the listing a
	// page at a time (1000 keys a page on S3). The objects carry Key, Size
	// and Modified; ContentType is left empty, as S3 listings do not carry
	// it (Stat the key for it). fn returning an error stops the walk with
	// that very error.
	Walk(ctx context.Context, prefix string, fn func(Object) error) error
	// Uploads lists the uploads still in progress that started before
	// before: on S3 the multipart uploads neither completed nor aborted, on
	// disk the temporary files of Puts that never finished (a crash between
	// create and rename). A Put still running is listed too once it started
	// before before: pick before further back than the longest Put may take.
	Uploads(ctx context.Context, before time.Time) ([]Upload, error)
	// AbortUpload aborts an upload that Uploads listed, dropping what it
	// stored. An upload already gone is not an error.
	AbortUpload(ctx context.Context, u Upload) error
}

// Upload is an upload that was started and neither finished nor aborted.
type Upload struct {
	Key string // the key it uploads to
	// ID names the upload: on S3 the multipart upload id, on disk the
	// temporary file's relative slash path.
	ID string
	// Started is when it began: on S3 when the multipart upload was
	// created, on disk when its temporary file was last written.
	Started time.Time
}
