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
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/imagery"
	"github.com/logicspike/mediad/internal/storage"
)

// UploadRequest is one file to store.
type UploadRequest struct {
	Purpose  Purpose
	Filename string    // the client's, sanitised here; metadata only
	Body     io.Reader // the file's bytes, read once
}

// cleanupTimeout bounds the clean-up after a failed upload, which runs even
// when the request's context has ended (the client went away).
const cleanupTimeout = 30 * time.Second

// Upload streams one file to the store and records it. The row is inserted
// pending before the first byte is stored and flipped to ready by a
// compare-and-set once the store confirmed; on any failure no object is
// left behind and the row ends failed with a reason.
func (s *Service) Upload(ctx context.Context, a Actor, req UploadRequest) (File, error) {
	scope, err := a.uploadScope(req.Purpose)
	if err != nil {
		return File{}, err
	}
	if req.Purpose != Attachment {
		return File{}, newError(KindUnsupportedType, nil, "%s uploads are not enabled yet", req.Purpose)
	}
	m := &meter{r: req.Body, limit: s.maxBytes[req.Purpose], hash: sha256.New()}

	// Sniff the type from the first bytes before anything is recorded.
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
	if !s.attachments.Allows(sniffed) {
		return File{}, newError(KindUnsupportedType, nil, "detected type %s is not accepted for %s; accepted: %s",
			sniffed.MediaType, req.Purpose, strings.Join(s.attachments.Accepted(), ", "))
	}

	now := s.now()
	id := NewID()
	create := s.db.MediaFile.Create().
		SetID(id).SetUserID(a.UserID).SetScope(scope).SetPurpose(mediafile.Purpose(req.Purpose)).
		SetKey(ObjectKey(scope, req.Purpose, now, id, sniffed.Ext)).
		SetFilename(SanitizeFilename(req.Filename)).SetContentType(sniffed.ContentType).
		SetStatus(mediafile.StatusPending).SetCreatedAt(now).SetUpdatedAt(now)
	if scope == a.TenantID {
		create.SetTenantID(a.TenantID)
	}
	row, err := create.Save(ctx)
	if err != nil {
		return File{}, dbError(err, "recording the upload")
	}

	body := io.MultiReader(bytes.NewReader(head), m)
	if err := s.store.Put(ctx, row.Key, body, storage.Meta{ContentType: sniffed.ContentType}); err != nil {
		failure := m.failure(ctx, err)
		s.abandon(ctx, row.ID, failure) // Put left nothing behind
		return File{}, failure
	}
	row.Size, row.Sha256 = m.n, hex.EncodeToString(m.hash.Sum(nil))
	if err := s.finish(ctx, row); err != nil {
		s.abandon(ctx, row.ID, err, row.Key)
		return File{}, err
	}
	return s.view(row), nil
}

// finish flips a pending row to ready with what was stored, only if it is
// still pending (the reaper may have given up on it meanwhile).
func (s *Service) finish(ctx context.Context, row *ent.MediaFile) error {
	now := s.now()
	upd := s.db.MediaFile.Update().
		Where(mediafile.ID(row.ID), mediafile.StatusEQ(mediafile.StatusPending)).
		SetStatus(mediafile.StatusReady).SetSize(row.Size).SetSha256(row.Sha256).SetUpdatedAt(now)
	if row.Width != nil {
		upd.SetWidth(*row.Width).SetHeight(*row.Height)
	}
	if row.Variants != nil {
		upd.SetVariants(row.Variants)
	}
	n, err := upd.Save(ctx)
	if err != nil {
		return dbError(err, "marking the upload ready")
	}
	if n == 0 {
		return newError(KindUnavailable, nil, "the upload was abandoned before it finished")
	}
	row.Status, row.UpdatedAt = mediafile.StatusReady, now
	return nil
}

// abandon ends an upload that cannot be made ready: its row becomes failed
// with the cause, then the objects it may have written are removed. It runs
// even when ctx ended (the client went away). When the database cannot
// tell whether the row is ready (the flip may have committed before an
// error), it leaves both alone: the reaper settles a row left pending.
func (s *Service) abandon(ctx context.Context, id string, cause error, keys ...string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	reason := strings.ToValidUTF8(cause.Error(), "?")
	if len(reason) > 1000 {
		reason = strings.ToValidUTF8(reason[:1000], "")
	}
	n, err := s.db.MediaFile.Update().
		Where(mediafile.ID(id), mediafile.StatusEQ(mediafile.StatusPending)).
		SetStatus(mediafile.StatusFailed).SetFailureReason(reason).SetUpdatedAt(s.now()).
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
		if err := s.store.Delete(cctx, keys...); err != nil {
			s.log.ErrorContext(ctx, "removing the objects of a failed upload", "id", id, "keys", keys, "err", err)
		}
	}
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
