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
}
