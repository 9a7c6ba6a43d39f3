package media

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// cursor is a position in a newest-first listing: the last file shown.
type cursor struct {
	created time.Time
	id      string
}

// encode makes the opaque, URL-safe nextCursor.
func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.created.UnixMicro(), 10) + "." + c.id))
}

var errBadCursor = errors.New("cursor is not one this service made")

// decodeCursor reads a cursor made by encode, refusing anything else.
func decodeCursor(s string) (cursor, error) {
	if len(s) > 64 {
		return cursor{}, errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errBadCursor
	}
	micros, id, ok := strings.Cut(string(b), ".")
	if !ok || !validID(id) {
		return cursor{}, errBadCursor
	}
	n, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || n < 0 {
		return cursor{}, errBadCursor
	}
	return cursor{created: time.UnixMicro(n).UTC(), id: id}, nil
}
