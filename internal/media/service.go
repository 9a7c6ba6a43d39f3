// Package media is mediad's core: uploads, listing, deletion and the status
// machine that keeps the database and the object store in agreement.
package media

import (
	"context"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/imagery"
	"github.com/logicspike/mediad/internal/storage"
)

// Purpose is what a file is for; it decides its scope, types, size limit
// and variants.
type Purpose string

// The purposes.
const (
	Avatar     Purpose = "avatar"
	Logo       Purpose = "logo"
	Attachment Purpose = "attachment"
)

// ParsePurpose validates a purpose named by a client.
func ParsePurpose(s string) (Purpose, error) {
	switch p := Purpose(s); p {
	case Avatar, Logo, Attachment:
		return p, nil
	case "":
		return "", newError(KindBadRequest, nil, "purpose is required: avatar, logo or attachment")
	}
	return "", newError(KindBadRequest, nil, "unknown purpose %q: use avatar, logo or attachment", s)
}

// Actor is who calls, as the gateway says.
type Actor struct {
	UserID      string
	TenantID    string // empty without a workspace context
	Permissions []string
}

// NewActor validates the gateway's identity headers.
func NewActor(userID, tenantID string, permissions []string) (Actor, error) {
	a := Actor{UserID: strings.TrimSpace(userID), TenantID: strings.TrimSpace(tenantID)}
	if err := checkScopeID("x-user-id", a.UserID); err != nil {
		return Actor{}, err
	}
	if a.TenantID != "" {
		if err := checkScopeID("x-tenant-id", a.TenantID); err != nil {
			return Actor{}, err
		}
	}
	for _, p := range permissions {
		if p = strings.TrimSpace(p); p != "" {
			a.Permissions = append(a.Permissions, p)
		}
	}
	return a, nil
}

// Scope is the caller's current scope: its tenant, else its own user scope.
// It is what the caller sees and deletes.
func (a Actor) Scope() string {
	if a.TenantID != "" {
		return a.TenantID
	}
	return UserScope(a.UserID)
}

// UserScope is the scope of a user's own files.
func UserScope(userID string) string { return "users/" + userID }

// uploadScope is where a new file of the purpose belongs.
func (a Actor) uploadScope(p Purpose) (string, error) {
	switch p {
	case Avatar:
		return UserScope(a.UserID), nil
	case Logo:
		if a.TenantID == "" {
			return "", newError(KindForbidden, nil, "a logo belongs to a workspace: x-tenant-id is required")
		}
		return a.TenantID, nil
	}
	return a.Scope(), nil
}

// Config is what the service needs of mediad's configuration.
type Config struct {
	PublicURL       string            // base of public object URLs
	MaxBytes        map[Purpose]int64 // size limit per purpose
	AttachmentTypes []string          // allow-list for attachments
	MaxImagePixels  int64
	MasterMaxSide   int                   // longest side of an avatar's or logo's master
	Variants        map[Purpose][]Variant // variant boxes of avatars (Fill) and logos (Fit)
}

// Variant is a named variant box.
type Variant struct {
	Name   string
	Pixels int
}

// Service runs uploads and queries over one database and one store.
type Service struct {
	db          *ent.Client
	store       storage.Store
	log         *slog.Logger
	publicURL   string
	maxBytes    map[Purpose]int64
	attachments imagery.TypePolicy
	images      imagery.TypePolicy
	imaging     map[Purpose]imagery.Options
	decodes     chan struct{} // bounds the images decoded at once, and so their memory
	now         func() time.Time
}

// New makes a Service.
func New(db *ent.Client, store storage.Store, log *slog.Logger, cfg Config) *Service {
	return &Service{
		db:          db,
		store:       store,
		log:         log,
		publicURL:   strings.TrimRight(cfg.PublicURL, "/"),
		maxBytes:    cfg.MaxBytes,
		attachments: imagery.NewTypePolicy(cfg.AttachmentTypes),
		images:      imagery.NewTypePolicy(imagery.ImageTypes),
		imaging: map[Purpose]imagery.Options{
			Avatar: imageOptions(cfg, Avatar, imagery.Fill),
			Logo:   imageOptions(cfg, Logo, imagery.Fit),
		},
		decodes: make(chan struct{}, runtime.GOMAXPROCS(0)),
		now:     func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

func imageOptions(cfg Config, p Purpose, mode imagery.Mode) imagery.Options {
	o := imagery.Options{MaxPixels: cfg.MaxImagePixels, MasterMaxSide: cfg.MasterMaxSide}
	for _, v := range cfg.Variants[p] {
		o.Variants = append(o.Variants, imagery.VariantSpec{Name: v.Name, Size: v.Pixels, Mode: mode})
	}
	return o
}

// MaxBytes is the size limit of the purpose (0 for an unknown purpose).
func (s *Service) MaxBytes(p Purpose) int64 { return s.maxBytes[p] }

// publicObjectURL is the public URL of an object key.
func (s *Service) publicObjectURL(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return s.publicURL + "/" + strings.Join(parts, "/")
}

// Check is the readiness of one dependency.
type Check struct {
	Name string
	Err  error
}

// Ready checks the database and the store.
func (s *Service) Ready(ctx context.Context) []Check {
	_, dbErr := s.db.MediaFile.Query().Limit(1).IDs(ctx)
	return []Check{
		{Name: "database", Err: dbErr},
		{Name: "storage", Err: s.store.Ping(ctx)},
	}
}

// File is a file as the API shows it.
type File struct {
	ID            string                 `json:"id"`
	Purpose       Purpose                `json:"purpose"`
	Status        string                 `json:"status"`
	Scope         string                 `json:"scope"`
	TenantID      *string                `json:"tenantId"`
	UserID        string                 `json:"userId"`
	Key           string                 `json:"key"`
	Filename      string                 `json:"filename"`
	ContentType   string                 `json:"contentType"`
	Size          int64                  `json:"size"`
	SHA256        string                 `json:"sha256,omitempty"`
	Width         *int                   `json:"width,omitempty"`
	Height        *int                   `json:"height,omitempty"`
	URL           string                 `json:"url"`
	Variants      map[string]VariantView `json:"variants,omitempty"`
	FailureReason string                 `json:"failureReason,omitempty"`
	CreatedAt     time.Time              `json:"createdAt"`
}

// VariantView is a variant as the API shows it.
type VariantView struct {
	URL         string `json:"url"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

func (s *Service) view(m *ent.MediaFile) File {
	f := File{
		ID: m.ID, Purpose: Purpose(m.Purpose), Status: string(m.Status), Scope: m.Scope, TenantID: m.TenantID,
		UserID: m.UserID, Key: m.Key, Filename: m.Filename, ContentType: m.ContentType, Size: m.Size,
		SHA256: m.Sha256, Width: m.Width, Height: m.Height, URL: s.publicObjectURL(m.Key),
		FailureReason: m.FailureReason, CreatedAt: m.CreatedAt.UTC(),
	}
	if len(m.Variants) > 0 {
		f.Variants = make(map[string]VariantView, len(m.Variants))
		for name, v := range m.Variants {
			f.Variants[name] = VariantView{URL: s.publicObjectURL(v.Key), Width: v.Width, Height: v.Height, Size: v.Size, ContentType: v.ContentType}
		}
	}
	return f
}

// objectKeys lists every object of a file: the original and its variants.
func objectKeys(m *ent.MediaFile) []string {
	keys := []string{m.Key}
	for _, v := range m.Variants {
		keys = append(keys, v.Key)
	}
	return keys
}

// dbError wraps a database failure.
func dbError(err error, what string) error {
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	return newError(KindUnavailable, err, "database unavailable while %s", what)
}

// statusOf parses a status filter: one status, or "all".
func statusOf(s string) (*mediafile.Status, error) {
	if s == "" {
		st := mediafile.StatusReady
		return &st, nil
	}
	if s == "all" {
		return nil, nil
	}
	st := mediafile.Status(s)
	if err := mediafile.StatusValidator(st); err != nil {
		return nil, newError(KindBadRequest, nil, "status must be pending, ready, failed, deleting or all, not %q", s)
	}
	return &st, nil
}
