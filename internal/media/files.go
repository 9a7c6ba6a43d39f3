package media

import (
	"context"

	"entgo.io/ent/dialect/sql"
	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/currentfile"
	"github.com/logicspike/mediad/ent/mediafile"
)

// Get returns a file of the caller's scope, whatever its status.
func (s *Service) Get(ctx context.Context, a Actor, id string) (File, error) {
	row, err := s.row(ctx, a, id)
	if err != nil {
		return File{}, err
	}
	return s.view(row), nil
}

// row finds a file in the caller's scope; anything else is ErrNotFound.
func (s *Service) row(ctx context.Context, a Actor, id string) (*ent.MediaFile, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	row, err := s.db.MediaFile.Query().Where(mediafile.ID(id), mediafile.Scope(a.Scope())).Only(ctx)
	if err != nil {
		return nil, dbError(err, "reading a file")
	}
	return row, nil
}

// ListQuery selects a page of files.
type ListQuery struct {
	Limit   int    // 1–100; 0 means 20
	Cursor  string // nextCursor of the previous page
	Purpose string // empty for every purpose
	Status  string // one status, "all", or empty for ready
}

// Page is one page of files, newest first.
type Page struct {
	Files      []File  `json:"files"`
	NextCursor *string `json:"nextCursor"`
}

// List pages through the caller's scope, newest first, by keyset: a page
// does not move when files are added before it.
func (s *Service) List(ctx context.Context, a Actor, q ListQuery) (Page, error) {
	if q.Limit == 0 {
		q.Limit = 20
	}
	if q.Limit < 1 || q.Limit > 100 {
		return Page{}, newError(KindBadRequest, nil, "limit must be between 1 and 100")
	}
	query := s.db.MediaFile.Query().Where(mediafile.Scope(a.Scope()))
	if q.Purpose != "" {
		p, err := ParsePurpose(q.Purpose)
		if err != nil {
			return Page{}, err
		}
		query.Where(mediafile.PurposeEQ(mediafile.Purpose(p)))
	}
	status, err := statusOf(q.Status)
	if err != nil {
		return Page{}, err
	}
	if status != nil {
		query.Where(mediafile.StatusEQ(*status))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return Page{}, newError(KindBadRequest, nil, "%v", err)
		}
		query.Where(mediafile.Or(
			mediafile.CreatedAtLT(c.created),
			mediafile.And(mediafile.CreatedAtEQ(c.created), mediafile.IDLT(c.id)),
		))
	}
	rows, err := query.
		Order(mediafile.ByCreatedAt(sql.OrderDesc()), mediafile.ByID(sql.OrderDesc())).
		Limit(q.Limit + 1).All(ctx)
	if err != nil {
		return Page{}, dbError(err, "listing files")
	}
	page := Page{Files: make([]File, 0, min(len(rows), q.Limit))}
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		next := cursor{created: last.CreatedAt, id: last.ID}.encode()
		page.NextCursor = &next
	}
	for _, r := range rows {
		page.Files = append(page.Files, s.view(r))
	}
	return page, nil
}

// Delete removes a file of the caller's scope: the row becomes deleting,
// then its objects go, then the row. When the store fails the row stays
// deleting (never gone while objects remain) and the call can be retried.
func (s *Service) Delete(ctx context.Context, a Actor, id string) error {
	row, err := s.row(ctx, a, id)
	if err != nil {
		return err
	}
	if row.Status == mediafile.StatusPending {
		return newError(KindInProgress, nil, "the file is still uploading")
	}
	return s.remove(ctx, row)
}

// remove deletes a file that is not pending: it stops being its scope's
// current avatar or logo and becomes deleting (one transaction); then its
// objects go, then its row.
func (s *Service) remove(ctx context.Context, row *ent.MediaFile) error {
	n, err := s.retire(ctx, row.ID, "marking a file deleting", func(u *ent.MediaFileUpdate) *ent.MediaFileUpdate {
		return u.Where(mediafile.StatusNEQ(mediafile.StatusPending)).SetStatus(mediafile.StatusDeleting)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound // gone meanwhile
	}
	return s.purge(ctx, row)
}

// retire, in one transaction, stops a file being its scope's current
// avatar or logo and applies change to its row; it returns how many rows
// change updated (0 when its conditions no longer hold).
func (s *Service) retire(ctx context.Context, id, what string, change func(*ent.MediaFileUpdate) *ent.MediaFileUpdate) (int, error) {
	tx, err := s.db.Tx(ctx)
	if err != nil {
		return 0, dbError(err, what)
	}
	if _, err := tx.CurrentFile.Update().Where(currentfile.FileID(id)).SetFileID("").Save(ctx); err != nil {
		tx.Rollback()
		return 0, dbError(err, what)
	}
	n, err := change(tx.MediaFile.Update().Where(mediafile.ID(id))).SetUpdatedAt(s.now()).Save(ctx)
	if err != nil {
		tx.Rollback()
		return 0, dbError(err, what)
	}
	if n == 0 {
		return 0, tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return 0, dbError(err, what)
	}
	return n, nil
}

// purge removes the objects of a deleting file, then its row. When the
// store fails the row stays deleting (never gone while objects remain).
func (s *Service) purge(ctx context.Context, row *ent.MediaFile) error {
	if err := s.store.Delete(ctx, objectKeys(row)...); err != nil {
		return newError(KindStorage, err, "removing the file's objects failed; it stays deleting and will be retried")
	}
	if _, err := s.db.MediaFile.Delete().Where(mediafile.ID(row.ID), mediafile.StatusEQ(mediafile.StatusDeleting)).Exec(ctx); err != nil {
		return dbError(err, "deleting a file's row")
	}
	return nil
}

// CurrentURL is the public URL of a scope's current avatar or logo, in the
// variant named size ("original" for the master; empty for md).
func (s *Service) CurrentURL(ctx context.Context, p Purpose, scopeID, size string) (string, error) {
	if size == "" {
		size = "md"
	}
	scope := scopeID
	if p == Avatar {
		scope = UserScope(scopeID)
	}
	if err := checkScopeID("id", scopeID); err != nil {
		return "", ErrNotFound
	}
	if size != "original" && !s.hasVariant(p, size) {
		return "", newError(KindBadRequest, nil, "size must be original or one of the %s variants", p)
	}
	cur, err := s.db.CurrentFile.Get(ctx, currentID(p, scope))
	if err != nil {
		return "", dbError(err, "reading the current file")
	}
	if cur.FileID == "" {
		return "", ErrNotFound
	}
	row, err := s.db.MediaFile.Query().Where(mediafile.ID(cur.FileID), mediafile.Scope(scope)).Only(ctx)
	if err != nil {
		return "", dbError(err, "reading the current file")
	}
	return s.variantURL(row, size)
}

func (s *Service) hasVariant(p Purpose, name string) bool {
	for _, v := range s.imaging[p].Variants {
		if v.Name == name {
			return true
		}
	}
	return false
}

// VariantURL is the public URL of a variant ("original" for the original)
// of a ready file in the caller's scope.
func (s *Service) VariantURL(ctx context.Context, a Actor, id, name string) (string, error) {
	row, err := s.row(ctx, a, id)
	if err != nil {
		return "", err
	}
	return s.variantURL(row, name)
}

func (s *Service) variantURL(row *ent.MediaFile, name string) (string, error) {
	if row.Status != mediafile.StatusReady {
		return "", ErrNotFound
	}
	if name == "original" {
		return s.publicObjectURL(row.Key), nil
	}
	v, ok := row.Variants[name]
	if !ok {
		return "", newError(KindNotFound, nil, "no variant %q", name)
	}
	return s.publicObjectURL(v.Key), nil
}
