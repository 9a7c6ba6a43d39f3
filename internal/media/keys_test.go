package media

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNewIDIsURLSafeAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if !validID(id) {
			t.Fatalf("invalid id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestObjectKeys(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	key := ObjectKey("users/u_123", Avatar, at, "V1StGXR8_Z5jdHi6B-myT", "jpg")
	if key != "users/u_123/avatar/2026/12/V1StGXR8_Z5jdHi6B-myT.jpg" {
		t.Fatalf("key %q", key)
	}
	if v := VariantKey(key, "sm", "png"); v != "users/u_123/avatar/2026/12/V1StGXR8_Z5jdHi6B-myT_sm.png" {
		t.Fatalf("variant key %q", v)
	}
	if k := ObjectKey("t_9", Attachment, at, "abc", "pdf"); k != "t_9/attachment/2026/12/abc.pdf" {
		t.Fatalf("tenant key %q", k)
	}
}

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("é", 600) + ".pdf"
	cases := map[string]string{
		"report.pdf":            "report.pdf",
		"../../etc/passwd":      "passwd",
		`C:\Users\me\photo.jpg`: "photo.jpg",
		"a\x00b\x1fc\u202e.txt": "abc.txt",
		"  .hidden  ":           "hidden",
		"":                      "file",
		"/":                     "file",
		"\xff\xfe":              "file",
		"über straße 😀.png":     "über straße 😀.png",
	}
	for in, want := range cases {
		if got := SanitizeFilename(in); got != want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", in, got, want)
		}
	}
	got := SanitizeFilename(long)
	if len(got) > 255 || !utf8.ValidString(got) || !strings.HasSuffix(got, ".pdf") {
		t.Errorf("long name: %d bytes, valid %v, %q…", len(got), utf8.ValidString(got), got[len(got)-8:])
	}
}

func TestCheckScopeID(t *testing.T) {
	for _, ok := range []string{"u_123", "user@example.com", "org:42", "A.b-c"} {
		if err := checkScopeID("x-user-id", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "../x", "a/b", "a b", "-x", strings.Repeat("a", 129), "é"} {
		if err := checkScopeID("x-user-id", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := cursor{created: time.Date(2026, 12, 4, 10, 0, 0, 123456000, time.UTC), id: NewID()}
	s := c.encode()
	if strings.ContainsAny(s, "+/=") {
		t.Fatalf("cursor %q is not URL-safe", s)
	}
	got, err := decodeCursor(s)
	if err != nil || !got.created.Equal(c.created) || got.id != c.id {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"x", "!!!", "MTIz", c.encode() + "A", strings.Repeat("A", 100), "LTEuYWJj"} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{created: time.Unix(1700000000, 0), id: "V1StGXR8_Z5jdHi6B-myT"}.encode())
	f.Add("")
	f.Add("MTIzLmFiYw")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		again, err := decodeCursor(c.encode())
		if err != nil || !again.created.Equal(c.created) || again.id != c.id {
			t.Fatalf("decoded cursor does not round-trip: %q", s)
		}
	})
}
