// Package schema is mediad's database schema, from which `go generate ./ent`
// makes the ent client.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Variant is one stored rendition of an image (sm, md, lg …), kept in the
// file's row as JSON. Its public URL is derived from Key.
type Variant struct {
	Key         string `json:"key"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// MediaFile is one uploaded file: its original object, its variants and the
// status that tells the truth about them.
//
// Status machine: pending → ready | failed; ready | failed → deleting → (row
// gone). A row is ready only once the store confirmed every object of it.
type MediaFile struct {
	ent.Schema
}

// Fields of the MediaFile.
func (MediaFile) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(32).NotEmpty().Immutable(),
		field.String("tenant_id").MaxLen(128).Optional().Nillable().Immutable(),
		field.String("user_id").MaxLen(128).NotEmpty().Immutable(),
		field.String("scope").MaxLen(160).NotEmpty().Immutable().
			Comment("the tenant id, or users/{userId}: who sees and deletes the file"),
		field.Enum("purpose").Values("avatar", "logo", "attachment").Immutable(),
		field.String("key").MaxLen(512).NotEmpty().Unique().Immutable().
			Comment("object key of the original"),
		field.String("filename").MaxLen(255).Default("").
			Comment("the client's filename, sanitised; metadata only, never part of a key"),
		field.String("content_type").MaxLen(255).Default(""),
		field.Int64("size").Default(0).Comment("bytes of the original object"),
		field.Int64("stored_bytes").Default(0).Comment("bytes of the original and its variants: what usage counts"),
		field.String("sha256").MaxLen(64).Default("").Comment("hex sha256 of the original object"),
		field.String("body_sha256").MaxLen(64).Default("").
			Comment("hex sha256 of the uploaded bytes (for images, not what is stored): what an idempotent retry is compared with"),
		field.String("idempotency_key").MaxLen(255).Optional().Nillable().
			Comment("the client's Idempotency-Key, unique per user while kept (24 h)"),
		field.Int("width").Optional().Nillable(),
		field.Int("height").Optional().Nillable(),
		field.JSON("variants", map[string]Variant{}).Optional(),
		field.Enum("status").Values("pending", "ready", "failed", "deleting").Default("pending"),
		field.String("failure_reason").MaxLen(1024).Default(""),
		field.Bool("leftover_objects").Default(false).
			Comment("a failed file whose objects may still be in the store: the reaper removes them"),
		field.Time("created_at").Immutable(),
		field.Time("updated_at"),
	}
}

// Indexes of the MediaFile.
func (MediaFile) Indexes() []ent.Index {
	return []ent.Index{
		// keyset pages: WHERE scope = ? [AND purpose/status] ORDER BY created_at DESC, id DESC
		index.Fields("scope", "created_at", "id"),
		// the reaper: WHERE status = ? AND updated_at < ?
		index.Fields("status", "updated_at"),
		index.Fields("leftover_objects"),
		// usage by tenant or user: WHERE status = 'ready' GROUP BY …
		index.Fields("tenant_id", "status"),
		index.Fields("user_id", "status"),
		// Idempotency-Key: one upload per key and user (NULLs do not collide)
		index.Fields("user_id", "idempotency_key").Unique(),
	}
}
