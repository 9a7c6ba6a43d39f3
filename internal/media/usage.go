package media

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/ent/predicate"
)

// AdminPermission lets a caller see usage across tenants and users.
const AdminPermission = "media:admin"

// UsageQuery selects what usage counts. Empty fields do not filter.
type UsageQuery struct {
	TenantID, UserID string
	GroupBy          string // "", "tenant", "user" or "purpose"
	From, To         string // RFC 3339; From inclusive, To exclusive, on createdAt
}

// Usage is storage used by ready files: originals plus their variants.
type Usage struct {
	Totals UsageCount   `json:"totals"`
	Groups []UsageGroup `json:"groups"`
}

// UsageCount counts files and bytes.
type UsageCount struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// UsageGroup is the usage of one tenant, user or purpose. Key is null for
// files that belong to no tenant, when grouping by tenant.
type UsageGroup struct {
	Key *string `json:"key"`
	UsageCount
}

// Usage sums storage in the database (COUNT and SUM with GROUP BY), never
// by loading rows. Only callers with media:admin may ask.
func (s *Service) Usage(ctx context.Context, a Actor, q UsageQuery) (Usage, error) {
	if !slices.Contains(a.Permissions, AdminPermission) {
		return Usage{}, newError(KindForbidden, nil, "usage needs the %s permission", AdminPermission)
	}
	where := []predicate.MediaFile{mediafile.StatusEQ(mediafile.StatusReady)}
	if q.TenantID != "" {
		where = append(where, mediafile.TenantID(q.TenantID))
	}
	if q.UserID != "" {
		where = append(where, mediafile.UserID(q.UserID))
	}
	for _, bound := range []struct {
		name, value string
		pred        func(time.Time) predicate.MediaFile
	}{{"from", q.From, mediafile.CreatedAtGTE}, {"to", q.To, mediafile.CreatedAtLT}} {
		if bound.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, bound.value)
		if err != nil {
			return Usage{}, newError(KindBadRequest, nil, "%s must be an RFC 3339 time such as 2026-12-01T00:00:00Z", bound.name)
		}
		where = append(where, bound.pred(t.UTC()))
	}
	column := map[string]string{"tenant": mediafile.FieldTenantID, "user": mediafile.FieldUserID, "purpose": mediafile.FieldPurpose}[q.GroupBy]
	if q.GroupBy != "" && column == "" {
		return Usage{}, newError(KindBadRequest, nil, "groupBy must be tenant, user or purpose")
	}

	var totals []struct {
		Count int64         `json:"count"`
		Sum   sql.NullInt64 `json:"sum"`
	}
	err := s.db.MediaFile.Query().Where(where...).
		Aggregate(ent.Count(), ent.Sum(mediafile.FieldStoredBytes)).Scan(ctx, &totals)
	if err != nil {
		return Usage{}, dbError(err, "summing usage")
	}
	u := Usage{Groups: []UsageGroup{}}
	if len(totals) == 1 {
		u.Totals = UsageCount{Files: totals[0].Count, Bytes: totals[0].Sum.Int64}
	}
	if column == "" {
		return u, nil
	}
	var groups []struct {
		Key   sql.NullString `json:"key"`
		Count int64          `json:"count"`
		Sum   sql.NullInt64  `json:"sum"`
	}
	err = s.db.MediaFile.Query().Where(where...).Modify(func(sel *entsql.Selector) {
		sel.Select(
			entsql.As(sel.C(column), "key"),
			entsql.As(entsql.Count("*"), "count"),
			entsql.As(entsql.Sum(sel.C(mediafile.FieldStoredBytes)), "sum"),
		).GroupBy(sel.C(column))
	}).Scan(ctx, &groups)
	if err != nil {
		return Usage{}, dbError(err, "grouping usage")
	}
	for _, g := range groups {
		ug := UsageGroup{UsageCount: UsageCount{Files: g.Count, Bytes: g.Sum.Int64}}
		if g.Key.Valid {
			ug.Key = &g.Key.String
		}
		u.Groups = append(u.Groups, ug)
	}
	slices.SortFunc(u.Groups, func(x, y UsageGroup) int { return cmp.Compare(y.Bytes, x.Bytes) })
	return u, nil
}
