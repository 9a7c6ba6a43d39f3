package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// tmpPrefix starts the name of the temporary file of a Put in progress (see
// Disk.Put): .tmp-<unix nanoseconds>-<base name of the key>.
const tmpPrefix = ".tmp-"

// Walk calls fn for the objects whose key starts with prefix, in key order.
// It reads one directory at a time through the os.Root, starting at the
// deepest directory the prefix names, and skips the sidecar directory,
// every name starting with a dot (the temporary files of Puts in progress),
// symbolic links and any name that is not a valid key.
func (d *Disk) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	dir := "."
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = prefix[:i]
		if checkKey(dir) != nil {
			return nil // no key lies below a directory that no key can name
		}
		// As the walk never follows a symbolic link, nor does the way to
		// where it starts: each element must be a directory.
		elems := strings.Split(dir, "/")
		for n := range elems {
			p := strings.Join(elems[:n+1], "/")
			fi, err := d.root.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
				return nil
			}
			if err != nil {
				return fmt.Errorf("disk walk %s: %w", p, err)
			}
		}
	}
	enter := func(sub string) bool { return strings.HasPrefix(sub+"/", prefix) }
	return d.walk(ctx, dir, enter, func(name string, fi fs.FileInfo) error {
		if !strings.HasPrefix(name, prefix) || checkKey(name) != nil {
			return nil // checkKey refuses the temporary files
		}
		return fn(Object{Key: name, Size: fi.Size(), Modified: fi.ModTime().UTC()})
	})
}

// Uploads lists the temporary files of unfinished Puts last written before
// before; each one's Key is the key its Put was writing.
func (d *Disk) Uploads(ctx context.Context, before time.Time) ([]Upload, error) {
	var ups []Upload
	err := d.walk(ctx, ".", func(string) bool { return true }, func(name string, fi fs.FileInfo) error {
		dir, base := path.Split(name)
		if !strings.HasPrefix(base, tmpPrefix) || !fi.ModTime().Before(before) {
			return nil
		}
		u := Upload{ID: name, Started: fi.ModTime().UTC()}
		if _, keyBase, ok := strings.Cut(strings.TrimPrefix(base, tmpPrefix), "-"); ok {
			u.Key = dir + keyBase
		}
		ups = append(ups, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ups, nil
}

// AbortUpload removes the temporary file u.ID. It refuses any other file:
// the ID must name a .tmp- file that, but for its leading dot, is a key.
func (d *Disk) AbortUpload(ctx context.Context, u Upload) error {
	dir, base := path.Split(u.ID)
	if !strings.HasPrefix(base, tmpPrefix) || checkKey(dir+strings.TrimPrefix(base, ".")) != nil {
		return fmt.Errorf("disk abort upload: not a temporary file of a put: %q", u.ID)
	}
	if err := d.root.Remove(u.ID); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk abort upload %s: %w", u.ID, err)
	}
	return nil
}

// walk reads the directory dir (a relative slash path) through the root and,
// in key order, calls file with the path and info of each regular file in
// it and descends into each subdirectory that enter accepts. A directory
// sorts as its name plus "/", as the keys below it do, so the files come in
// the byte-wise order of their whole paths. Directories whose name starts
// with a dot (metaDir) are never entered; symbolic links are skipped; an
// entry removed while walking is skipped, and so is a missing dir.
func (d *Disk) walk(ctx context.Context, dir string, enter func(dir string) bool, file func(name string, fi fs.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("disk walk: %w", err)
	}
	f, err := d.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk walk %s: %w", dir, err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("disk walk %s: %w", dir, err)
	}
	sortKey := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	for _, e := range entries {
		name := path.Join(dir, e.Name())
		switch {
		case e.IsDir():
			if strings.HasPrefix(e.Name(), ".") || !enter(name) {
				continue
			}
			if err := d.walk(ctx, name, enter, file); err != nil {
				return err
			}
		case e.Type().IsRegular():
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("disk walk: %w", err)
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("disk walk %s: %w", name, err)
			}
			if err := file(name, fi); err != nil {
				return err
			}
		}
	}
	return nil
}
