package media

import (
	"errors"
	"fmt"
)

// Kind says what went wrong, in the terms of the HTTP contract; app maps
// each kind to a status and code in one place (app/problem.go).
type Kind int

// The kinds of error the service returns.
const (
	KindInternal          Kind = iota
	KindBadRequest             // malformed input
	KindBody                   // the request body failed while streaming (Err says why)
	KindForbidden              // not allowed for this caller
	KindNotFound               // unknown id, or outside the caller's scope
	KindInProgress             // the file is still streaming
	KindTooLarge               // beyond the purpose's size limit
	KindUnsupportedType        // sniffed type not accepted
	KindInvalidImage           // undecodable, truncated, or a decompression bomb
	KindStorage                // the object store failed
	KindUnavailable            // the database failed
	KindIdempotencyReused      // an Idempotency-Key already used for other bytes
)

// Error is an error of the service, with its kind and a message fit for the
// caller ("detail"); Err, when set, is the cause, for logs.
type Error struct {
	Kind   Kind
	Detail string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

func newError(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...), Err: err}
}

// ErrNotFound is the one answer for an id that is unknown or not the caller's.
var ErrNotFound = &Error{Kind: KindNotFound, Detail: "no such file"}

// KindOf returns the kind of err (KindInternal when it is not an *Error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
