package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/currentfile"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/ent/schema"
	"github.com/logicspike/mediad/internal/imagery"
	"github.com/logicspike/mediad/internal/storage"
)

// UploadRequest is one file to store.
type UploadRequest struct {
	// IdempotencyKey, when set, makes a retry with the same bytes return
	// the first file instead of storing a second (kept 24 h per user).
	IdempotencyKey string
	Purpose        Purpose
	Filename       string    // the client's, sanitised here; metadata only
	Body           io.Reader // the file's bytes, read once
}

// cleanupTimeout bounds the clean-up after a failed upload, which runs even
// when the request's context has ended (the client went away).
const cleanupTimeout = 30 * time.Second

// Upload streams one file to the store and records it. The row is inserted
// pending before the first byte is stored and flipped to ready by a
// compare-and-set once the store confirmed; on any failure no object is
// left behind and the row ends failed with a reason.
//
// With an Idempotency-Key already used by the caller, it returns the first
// file and replayed=true when the bytes are the same, KindInProgress while
// the first is still streaming, and KindIdempotencyReused for other bytes.
func (s *Service) Upload(ctx context.Context, a Actor, req UploadRequest) (f File, replayed bool, err error) {
	scope, err := a.uploadScope(req.Purpose)
	if err != nil {
		return File{}, false, err
	}
	m := &meter{r: req.Body, limit: s.maxBytes[req.Purpose], hash: sha256.New()}
	if req.IdempotencyKey != "" {
		first, err := s.firstUpload(ctx, a, req.IdempotencyKey)
		if err != nil || first != nil {
			return s.replay(ctx, first, req, m, err)
		}
	}
	f, err = s.upload(ctx, a, scope, req, m)
	return f, false, err
}

// idempotencyWindow is how long an Idempotency-Key is kept.
const idempotencyWindow = 24 * time.Hour

// firstUpload finds the live upload made with the caller's key, if any. A
// key whose upload failed, is being deleted, or is older than the window
// is released for a new upload.
func (s *Service) firstUpload(ctx context.Context, a Actor, key string) (*ent.MediaFile, error) {
	_, err := s.db.MediaFile.Update().
		Where(mediafile.UserID(a.UserID), mediafile.IdempotencyKey(key), mediafile.Or(
			mediafile.CreatedAtLT(s.now().Add(-idempotencyWindow)),
			mediafile.StatusIn(mediafile.StatusFailed, mediafile.StatusDeleting),
		)).
		ClearIdempotencyKey().Save(ctx)
	if err != nil {
		return nil, dbError(err, "checking the idempotency key")
	}
	first, err := s.db.MediaFile.Query().Where(mediafile.UserID(a.UserID), mediafile.IdempotencyKey(key)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError(err, "checking the idempotency key")
	}
	return first, nil
}

// replay answers a retry: the first file when the body is the same bytes.
func (s *Service) replay(ctx context.Context, first *ent.MediaFile, req UploadRequest, m *meter, err error) (File, bool, error) {
	if err != nil {
		return File{}, false, err
	}
	if first.Status == mediafile.StatusPending {
		return File{}, false, newError(KindInProgress, nil, "an upload with this Idempotency-Key is still in progress")
	}
	if _, err := io.Copy(io.Discard, m); err != nil {
		return File{}, false, m.failure(ctx, err)
	}
	if Purpose(first.Purpose) != req.Purpose || hex.EncodeToString(m.hash.Sum(nil)) != first.BodySha256 {
		return File{}, false, newError(KindIdempotencyReused, nil, "this Idempotency-Key was used for a different upload")
	}
	return s.view(first), true, nil
}

// upload sniffs the type from the first bytes, before anything is
// recorded, then stores the file as its purpose wants.
func (s *Service) upload(ctx context.Context, a Actor, scope string, req UploadRequest, m *meter) (File, error) {
	head := make([]byte, imagery.HeadSize)
	n, err := io.ReadFull(m, head)
	switch {
	case err == io.EOF:
		return File{}, newError(KindBadRequest, nil, "the file is empty")
	case err != nil && err != io.ErrUnexpectedEOF:
		return File{}, m.failure(ctx, err)
	}
	head = head[:n]
	sniffed := imagery.Sniff(head)
	policy := s.attachments
	if req.Purpose != Attachment {
		policy = s.images
	}
	if !policy.Allows(sniffed) {
		return File{}, newError(KindUnsupportedType, nil, "detected type %s is not accepted for %s; accepted: %s",
			sniffed.MediaType, req.Purpose, strings.Join(policy.Accepted(), ", "))
	}
	body := io.MultiReader(bytes.NewReader(head), m)
	if req.Purpose == Attachment {
		return s.uploadAttachment(ctx, a, scope, req, sniffed, m, body)
	}
	return s.uploadImage(ctx, a, scope, req, sniffed, m, body)
}

// newRow inserts the pending row of an upload.
func (s *Service) newRow(ctx context.Context, a Actor, scope string, req UploadRequest, contentType, ext string) (*ent.MediaFile, error) {
	now := s.now()
	id := NewID()
	create := s.db.MediaFile.Create().
		SetID(id).SetUserID(a.UserID).SetScope(scope).SetPurpose(mediafile.Purpose(req.Purpose)).
		SetKey(ObjectKey(scope, req.Purpose, now, id, ext)).
		SetFilename(SanitizeFilename(req.Filename)).SetContentType(contentType).
		SetStatus(mediafile.StatusPending).SetCreatedAt(now).SetUpdatedAt(now)
	if scope == a.TenantID {
		create.SetTenantID(a.TenantID)
	}
	if req.IdempotencyKey != "" {
		create.SetIdempotencyKey(req.IdempotencyKey)
	}
	row, err := create.Save(ctx)
	if ent.IsConstraintError(err) && req.IdempotencyKey != "" {
		return nil, newError(KindInProgress, err, "an upload with this Idempotency-Key is already in progress")
	}
	if err != nil {
		return nil, dbError(err, "recording the upload")
	}
	return row, nil
}

// uploadAttachment stores the bytes as they come: a pending row, the
// metered stream into the store, then ready.
func (s *Service) uploadAttachment(ctx context.Context, a Actor, scope string, req UploadRequest, sniffed imagery.Sniffed, m *meter, body io.Reader) (File, error) {
	row, err := s.newRow(ctx, a, scope, req, sniffed.ContentType, sniffed.Ext)
	if err != nil {
		return File{}, err
	}
	if err := s.store.Put(ctx, row.Key, body, storage.Meta{ContentType: sniffed.ContentType}); err != nil {
		failure := m.failure(ctx, err)
		s.abandon(ctx, row.ID, failure) // Put left nothing behind
		return File{}, failure
	}
	row.Size, row.Sha256 = m.n, hex.EncodeToString(m.hash.Sum(nil))
	row.BodySha256 = row.Sha256
	// Every byte is stored: finishing does not depend on the client any more.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.finish(fctx, row); err != nil {
		s.abandon(ctx, row.ID, err, row.Key)
		return File{}, err
	}
	return s.view(row), nil
}

// uploadImage decodes an avatar or logo straight from the body, makes its
// clean master and variants, and stores those: the uploaded bytes never
// reach the store. Then the file becomes the scope's current one, and the
// one it replaces is deleted.
func (s *Service) uploadImage(ctx context.Context, a Actor, scope string, req UploadRequest, sniffed imagery.Sniffed, m *meter, body io.Reader) (File, error) {
	select {
	case s.decodes <- struct{}{}:
	case <-ctx.Done():
		return File{}, m.failure(ctx, ctx.Err())
	}
	res, err := imagery.Process(body, sniffed.MediaType, s.imaging[req.Purpose])
	<-s.decodes
	if err == nil {
		// Whatever follows the image in the part is read (and counted
		// against the limit) but not kept.
		_, err = io.Copy(io.Discard, m)
	}
	if err != nil {
		if m.n > m.limit || m.bodyErr != nil || ctx.Err() != nil || !errors.Is(err, imagery.ErrInvalidImage) {
			if f := m.failure(ctx, err); KindOf(f) != KindStorage {
				return File{}, f
			}
			return File{}, newError(KindInternal, err, "processing the image failed")
		}
		return File{}, newError(KindInvalidImage, err, "not a valid %s image, or more than %d pixels", sniffed.MediaType, s.imaging[req.Purpose].MaxPixels)
	}

	master := res.Master
	row, err := s.newRow(ctx, a, scope, req, master.ContentType, master.Ext)
	if err != nil {
		return File{}, err
	}
	row.BodySha256 = hex.EncodeToString(m.hash.Sum(nil)) // the whole part was read
	sum := sha256.Sum256(master.Data)
	w, h := master.Width, master.Height
	row.Size, row.Sha256, row.Width, row.Height = int64(len(master.Data)), hex.EncodeToString(sum[:]), &w, &h
	row.Variants = make(map[string]schema.Variant, len(res.Variants))
	row.StoredBytes = row.Size
	written := make([]string, 0, 1+len(res.Variants))
	objects := append([]imagery.Encoded{master}, res.Variants...)
	for i, obj := range objects {
		key := row.Key
		if i > 0 {
			key = VariantKey(row.Key, obj.Name, obj.Ext)
			row.Variants[obj.Name] = schema.Variant{Key: key, Width: obj.Width, Height: obj.Height, Size: int64(len(obj.Data)), ContentType: obj.ContentType}
			row.StoredBytes += int64(len(obj.Data))
		}
		if err := s.store.Put(ctx, key, bytes.NewReader(obj.Data), storage.Meta{ContentType: obj.ContentType}); err != nil {
			failure := m.failure(ctx, err)
			s.abandon(ctx, row.ID, failure, written...)
			return File{}, failure
		}
		written = append(written, key)
	}
	// Every object is stored: finishing does not depend on the client any more.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	replaced, err := s.finishCurrent(fctx, row, Purpose(row.Purpose))
	if err != nil {
		s.abandon(ctx, row.ID, err, written...)
		return File{}, err
	}
	if replaced != nil {
		// The old file is already not current; a failure here leaves it
		// deleting, for the reaper to finish.
		if err := s.purge(fctx, replaced); err != nil {
			s.log.WarnContext(ctx, "removing a replaced file failed; the reaper will retry", "id", replaced.ID, "err", err)
		}
	}
	return s.view(row), nil
}

// currentID is the id of the CurrentFile row of a scope and purpose.
func currentID(p Purpose, scope string) string { return string(p) + ":" + scope }

// finishCurrent flips the row to ready and makes it its scope's current
// avatar or logo, in one transaction. The file it replaces becomes
// deleting in the same transaction and is returned, to be purged.
//
// Concurrent uploads to one scope are serialised on the CurrentFile row:
// the upsert takes its row lock (PostgreSQL), and SQLite transactions
// begin IMMEDIATE; the pointer is read only after that, so each upload
// sees the one committed before it and exactly one ends current.
func (s *Service) finishCurrent(ctx context.Context, row *ent.MediaFile, p Purpose) (replaced *ent.MediaFile, err error) {
	tx, err := s.db.Tx(ctx)
	if err != nil {
		return nil, dbError(err, "starting a transaction")
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	ptr := currentID(p, row.Scope)
	if err := tx.CurrentFile.Create().SetID(ptr).SetFileID("").OnConflictColumns(currentfile.FieldID).Ignore().Exec(ctx); err != nil {
		return nil, dbError(err, "locking the current file")
	}
	cur, err := tx.CurrentFile.Get(ctx, ptr)
	if err != nil {
		return nil, dbError(err, "reading the current file")
	}
	now := s.now()
	n, err := tx.MediaFile.Update().
		Where(mediafile.ID(row.ID), mediafile.StatusEQ(mediafile.StatusPending)).
		SetStatus(mediafile.StatusReady).SetSize(row.Size).SetStoredBytes(row.StoredBytes).SetSha256(row.Sha256).SetBodySha256(row.BodySha256).
		SetWidth(*row.Width).SetHeight(*row.Height).SetVariants(row.Variants).SetUpdatedAt(now).
		Save(ctx)
	if err != nil {
		return nil, dbError(err, "marking the upload ready")
	}
	if n == 0 {
		return nil, newError(KindUnavailable, nil, "the upload was abandoned before it finished")
	}
	if err := tx.CurrentFile.UpdateOneID(ptr).SetFileID(row.ID).Exec(ctx); err != nil {
		return nil, dbError(err, "moving the current file")
	}
	if cur.FileID != "" && cur.FileID != row.ID {
		old, err := tx.MediaFile.Query().Where(mediafile.ID(cur.FileID)).Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, dbError(err, "reading the replaced file")
		}
		if old != nil && old.Status != mediafile.StatusPending {
			if err := tx.MediaFile.UpdateOne(old).SetStatus(mediafile.StatusDeleting).SetUpdatedAt(now).Exec(ctx); err != nil {
				return nil, dbError(err, "marking the replaced file deleting")
			}
			replaced = old
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, dbError(err, "committing the upload")
	}
	row.Status, row.UpdatedAt = mediafile.StatusReady, now
	return replaced, nil
}

// finish flips a pending row to ready with what was stored, only if it is
// still pending (the reaper may have given up on it meanwhile).
func (s *Service) finish(ctx context.Context, row *ent.MediaFile) error {
	now := s.now()
	upd := s.db.MediaFile.Update().
		Where(mediafile.ID(row.ID), mediafile.StatusEQ(mediafile.StatusPending)).
		SetStatus(mediafile.StatusReady).SetSize(row.Size).SetStoredBytes(row.Size).SetSha256(row.Sha256).SetBodySha256(row.BodySha256).SetUpdatedAt(now)
	n, err := upd.Save(ctx)
	if err != nil {
		return dbError(err, "marking the upload ready")
	}
	if n == 0 {
		return newError(KindUnavailable, nil, "the upload was abandoned before it finished")
	}
	row.Status, row.UpdatedAt, row.StoredBytes = mediafile.StatusReady, now, row.Size
	return nil
}

// abandon ends an upload that cannot be made ready: its row becomes failed
// with the cause, then the objects it may have written are removed. It runs
// even when ctx ended (the client went away). The row says it may have
// leftover objects until they are gone, so that a crash or a store outage
// in between leaves work for the reaper, not orphans. When the database
// cannot tell whether the row is ready (the flip may have committed before
// an error), it leaves both alone: the reaper settles a row left pending.
func (s *Service) abandon(ctx context.Context, id string, cause error, keys ...string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	reason := strings.ToValidUTF8(cause.Error(), "?")
	if len(reason) > 1000 {
		reason = strings.ToValidUTF8(reason[:1000], "")
	}
	n, err := s.db.MediaFile.Update().
		Where(mediafile.ID(id), mediafile.StatusEQ(mediafile.StatusPending)).
		SetStatus(mediafile.StatusFailed).SetFailureReason(reason).SetLeftoverObjects(len(keys) > 0).SetUpdatedAt(s.now()).
		Save(cctx)
	if err != nil {
		s.log.ErrorContext(ctx, "could not mark a failed upload failed; the reaper will", "id", id, "err", err)
		return
	}
	if n == 0 {
		row, err := s.db.MediaFile.Get(cctx, id)
		if err != nil || row.Status == mediafile.StatusReady {
			return
		}
	}
	if len(keys) > 0 {
		s.removeLeftovers(cctx, id, keys)
	}
}

// removeLeftovers deletes the objects of a failed file and clears its
// leftover mark; on failure the mark stays, for the reaper.
func (s *Service) removeLeftovers(ctx context.Context, id string, keys []string) bool {
	if err := s.store.Delete(ctx, keys...); err != nil {
		s.log.WarnContext(ctx, "removing the objects of a failed upload; the reaper will retry", "id", id, "keys", keys, "err", err)
		return false
	}
	if err := s.db.MediaFile.UpdateOneID(id).Where(mediafile.StatusEQ(mediafile.StatusFailed)).SetLeftoverObjects(false).Exec(ctx); err != nil && !ent.IsNotFound(err) {
		s.log.WarnContext(ctx, "clearing the leftover mark", "id", id, "err", err)
	}
	return true
}

// errTooLarge stops a read beyond the purpose's limit.
var errTooLarge = errors.New("file exceeds the size limit")

// meter is the one pass over the body: it counts, enforces the size limit,
// hashes, and remembers whether a failure came from the body itself.
type meter struct {
	r       io.Reader
	limit   int64
	n       int64
	hash    hash.Hash
	bodyErr error
}

func (m *meter) Read(p []byte) (int, error) {
	if m.n > m.limit {
		return 0, errTooLarge
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	if m.n > m.limit {
		return 0, errTooLarge
	}
	m.hash.Write(p[:n])
	if err != nil && err != io.EOF {
		m.bodyErr = err
	}
	return n, err
}

// failure says what made an upload fail: the size limit, the body (client
// gone, malformed multipart), the request's end, or the store.
func (m *meter) failure(ctx context.Context, err error) error {
	switch {
	case m.n > m.limit:
		return newError(KindTooLarge, nil, "the file is larger than the limit of %d bytes", m.limit)
	case m.bodyErr != nil:
		return newError(KindBody, m.bodyErr, "reading the upload failed")
	case ctx.Err() != nil:
		return newError(KindBody, context.Cause(ctx), "the upload was cancelled")
	}
	return newError(KindStorage, err, "storing the file failed")
}
