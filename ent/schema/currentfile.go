package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// CurrentFile points at a scope's current avatar or logo. Its id is
// "{purpose}:{scope}", one row per scope and purpose; an upload that
// replaces the current file locks this row, so concurrent replacements
// are serialised and exactly one ends current.
type CurrentFile struct {
	ent.Schema
}

// Fields of the CurrentFile.
func (CurrentFile) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(200).NotEmpty().Immutable(),
		field.String("file_id").MaxLen(32).Default("").
			Comment("the current file's id; empty when the scope has none"),
	}
}
