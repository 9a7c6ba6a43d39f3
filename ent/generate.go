// Package ent holds mediad's database schema (schema/, written by hand) and
// the code ent generates from it (everything else, committed).
package ent

//go:generate go run entgo.io/ent/cmd/ent generate --feature sql/modifier,sql/upsert,sql/execquery ./schema
