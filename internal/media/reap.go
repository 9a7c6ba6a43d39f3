package media

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/storage"
)

// reapBatch bounds the rows one reaper pass handles of each kind.
const reapBatch = 500

// deletingGrace is how long a deleting row is left to the request that is
// deleting it before the reaper takes over.
const deletingGrace = time.Minute

// ReapReport counts what one reaper pass did.
type ReapReport struct {
	Abandoned int // stale pending rows failed, their objects removed
	Purged    int // deleting rows finished
	Cleaned   int // failed rows whose leftover objects were removed
	Aborted   int // stale uploads aborted in the store
}

// Reap heals what crashes and outages leave behind: pending rows older than
// pendingAfter become failed and lose their objects; deleting rows are
// purged again; uploads in the store older than pendingAfter are aborted.
// Each row is claimed by a compare-and-set, so replicas reaping at once
// never handle the same row twice.
func (s *Service) Reap(ctx context.Context, pendingAfter time.Duration) (ReapReport, error) {
	var report ReapReport
	now := s.now()
	cutoff := now.Add(-pendingAfter)
	// Work another request is still doing (a delete, an upload's own
	// clean-up) is left to it for a while.
	grace := min(deletingGrace, pendingAfter)

	stale, err := s.db.MediaFile.Query().
		Where(mediafile.StatusEQ(mediafile.StatusPending), mediafile.UpdatedAtLT(cutoff)).
		Limit(reapBatch).All(ctx)
	if err != nil {
		return report, dbError(err, "finding stale uploads")
	}
	for _, row := range stale {
		n, err := s.db.MediaFile.Update().
			Where(mediafile.ID(row.ID), mediafile.StatusEQ(mediafile.StatusPending), mediafile.UpdatedAtLT(cutoff)).
			SetStatus(mediafile.StatusFailed).SetUpdatedAt(now).SetLeftoverObjects(true).
			SetFailureReason(fmt.Sprintf("abandoned: still pending after %s (the upload was cut off)", pendingAfter)).
			Save(ctx)
		if err != nil {
			return report, dbError(err, "failing a stale upload")
		}
		if n == 0 {
			continue // another reaper, or the upload itself, got there first
		}
		report.Abandoned++
		s.removeLeftovers(ctx, row.ID, s.possibleKeys(row))
	}

	leftovers, err := s.db.MediaFile.Query().
		Where(mediafile.StatusEQ(mediafile.StatusFailed), mediafile.LeftoverObjects(true), mediafile.UpdatedAtLT(now.Add(-grace))).
		Limit(reapBatch).All(ctx)
	if err != nil {
		return report, dbError(err, "finding failed files with leftover objects")
	}
	for _, row := range leftovers {
		n, err := s.db.MediaFile.Update().
			Where(mediafile.ID(row.ID), mediafile.LeftoverObjects(true), mediafile.UpdatedAt(row.UpdatedAt)).
			SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return report, dbError(err, "claiming a failed file with leftovers")
		}
		if n == 1 && s.removeLeftovers(ctx, row.ID, s.possibleKeys(row)) {
			report.Cleaned++
		}
	}

	deleting, err := s.db.MediaFile.Query().
		Where(mediafile.StatusEQ(mediafile.StatusDeleting), mediafile.UpdatedAtLT(now.Add(-grace))).
		Limit(reapBatch).All(ctx)
	if err != nil {
		return report, dbError(err, "finding files left deleting")
	}
	for _, row := range deleting {
		n, err := s.db.MediaFile.Update().
			Where(mediafile.ID(row.ID), mediafile.StatusEQ(mediafile.StatusDeleting), mediafile.UpdatedAt(row.UpdatedAt)).
			SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return report, dbError(err, "claiming a file left deleting")
		}
		if n == 0 {
			continue
		}
		if err := s.purge(ctx, row); err != nil {
			s.log.WarnContext(ctx, "reaper: purging a deleting file", "id", row.ID, "err", err)
			continue
		}
		report.Purged++
	}

	uploads, err := s.store.Uploads(ctx, cutoff)
	if err != nil {
		return report, newError(KindStorage, err, "listing stale uploads")
	}
	for _, u := range uploads {
		live, err := s.db.MediaFile.Query().
			Where(mediafile.Key(u.Key), mediafile.StatusEQ(mediafile.StatusPending), mediafile.UpdatedAtGTE(cutoff)).
			Exist(ctx)
		if err != nil {
			return report, dbError(err, "checking a stale upload")
		}
		if live {
			continue
		}
		if err := s.store.AbortUpload(ctx, u); err != nil {
			s.log.WarnContext(ctx, "reaper: aborting a stale upload", "key", u.Key, "err", err)
			continue
		}
		report.Aborted++
	}
	return report, nil
}

// possibleKeys lists every object a file may have written: its recorded
// objects and, for an image not yet ready (variants not recorded), each
// configured variant in the master's format.
func (s *Service) possibleKeys(row *ent.MediaFile) []string {
	keys := objectKeys(row)
	if row.Variants == nil {
		ext := strings.TrimPrefix(path.Ext(row.Key), ".")
		for _, v := range s.imaging[Purpose(row.Purpose)].Variants {
			keys = append(keys, VariantKey(row.Key, v.Name, ext))
		}
	}
	return keys
}

// RunReaper reaps every interval until ctx ends.
func (s *Service) RunReaper(ctx context.Context, interval, pendingAfter time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := s.Reap(ctx, pendingAfter)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.WarnContext(ctx, "reaper pass failed", "err", err)
		case r != ReapReport{}:
			s.log.InfoContext(ctx, "reaper pass", "abandoned", r.Abandoned, "purged", r.Purged, "cleaned", r.Cleaned, "aborted", r.Aborted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serviceKey matches the keys this service writes: originals and variants
// under {scope}/{purpose}/{yyyy}/{mm}/.
var serviceKey = regexp.MustCompile(`^(users/)?[A-Za-z0-9][A-Za-z0-9._:@-]*/(avatar|logo|attachment)/[0-9]{4}/[0-9]{2}/[A-Za-z0-9_-]{21}(_[a-z0-9]+)?\.[a-z0-9]+$`)

// ReconcileReport is what a reconcile found (and fixed).
type ReconcileReport struct {
	RowsChecked    int
	ObjectsChecked int
	Missing        []string // ids of ready files with an object gone
	Orphans        []string // object keys no live file claims
}

// Clean tells whether nothing was found.
func (r ReconcileReport) Clean() bool { return len(r.Missing) == 0 && len(r.Orphans) == 0 }

// Reconcile compares the database with the store: ready files whose objects
// are gone, and objects under the service's key layout that no pending,
// ready or deleting file claims. With fix, the first become failed (and
// lose the objects they still have) and the second are deleted. Each
// finding is checked again just before it is counted, so an upload or
// delete running meanwhile is not reported.
func (s *Service) Reconcile(ctx context.Context, fix bool) (ReconcileReport, error) {
	var report ReconcileReport
	objects := map[string]bool{}
	err := s.store.Walk(ctx, "", func(o storage.Object) error {
		if serviceKey.MatchString(o.Key) {
			objects[o.Key] = true
		}
		return nil
	})
	if err != nil {
		return report, newError(KindStorage, err, "listing the store")
	}
	report.ObjectsChecked = len(objects)

	claimed := map[string]bool{}
	var missing []*ent.MediaFile
	for after := ""; ; {
		rows, err := s.db.MediaFile.Query().Where(mediafile.IDGT(after)).Order(mediafile.ByID()).Limit(1000).All(ctx)
		if err != nil {
			return report, dbError(err, "reading files")
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].ID
		report.RowsChecked += len(rows)
		for _, row := range rows {
			if row.Status == mediafile.StatusFailed {
				continue
			}
			for _, k := range s.possibleKeys(row) {
				claimed[k] = true
			}
			if row.Status == mediafile.StatusReady {
				for _, k := range objectKeys(row) {
					if !objects[k] {
						missing = append(missing, row)
						break
					}
				}
			}
		}
	}

	for _, row := range missing {
		if !s.stillMissing(ctx, row) {
			continue
		}
		report.Missing = append(report.Missing, row.ID)
		if fix {
			if err := s.failMissing(ctx, row); err != nil {
				return report, err
			}
		}
	}
	for key := range objects {
		if claimed[key] {
			continue
		}
		if live, err := s.db.MediaFile.Query().Where(mediafile.Key(key), mediafile.StatusNEQ(mediafile.StatusFailed)).Exist(ctx); err != nil || live {
			continue
		}
		report.Orphans = append(report.Orphans, key)
		if fix {
			if err := s.store.Delete(ctx, key); err != nil {
				return report, newError(KindStorage, err, "deleting an orphan object")
			}
		}
	}
	return report, nil
}

// stillMissing re-reads a row and stats its objects.
func (s *Service) stillMissing(ctx context.Context, row *ent.MediaFile) bool {
	fresh, err := s.db.MediaFile.Get(ctx, row.ID)
	if err != nil || fresh.Status != mediafile.StatusReady {
		return false
	}
	for _, k := range objectKeys(fresh) {
		if _, err := s.store.Stat(ctx, k); errors.Is(err, storage.ErrNotFound) {
			return true
		}
	}
	return false
}

// failMissing marks a ready file whose objects are gone failed, clears it
// as current, and removes the objects it still has.
func (s *Service) failMissing(ctx context.Context, row *ent.MediaFile) error {
	n, err := s.retire(ctx, row.ID, "failing a file with missing objects", func(u *ent.MediaFileUpdate) *ent.MediaFileUpdate {
		return u.Where(mediafile.StatusEQ(mediafile.StatusReady)).SetStatus(mediafile.StatusFailed).
			SetFailureReason("objects missing from the store (found by reconcile)").SetLeftoverObjects(true)
	})
	if err != nil {
		return err
	}
	if n == 1 {
		s.removeLeftovers(ctx, row.ID, objectKeys(row))
	}
	return nil
}
