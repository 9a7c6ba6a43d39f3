package media

import (
	"crypto/rand"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// idAlphabet is nanoid's URL-safe alphabet: 64 symbols, so a random byte
// masked to 6 bits picks one without bias. 21 symbols carry 126 bits.
const idAlphabet = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"

// NewID returns a random, URL-safe file id such as "V1StGXR8_Z5jdHi6B-myT".
func NewID() string {
	b := make([]byte, 21)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux; if it does, nothing is safe
	}
	for i := range b {
		b[i] = idAlphabet[b[i]&63]
	}
	return string(b)
}

// validID tells whether s could be an id NewID made, so that garbage is
// answered 404 without a query.
func validID(s string) bool {
	if len(s) != 21 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(idAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

// ObjectKey is where the original of a file lives:
// {scope}/{purpose}/{yyyy}/{mm}/{id}.{ext}.
func ObjectKey(scope string, purpose Purpose, created time.Time, id, ext string) string {
	return path.Join(scope, string(purpose), created.UTC().Format("2006/01"), id+"."+ext)
}

// VariantKey is where a variant of the original at key lives:
// {scope}/{purpose}/{yyyy}/{mm}/{id}_{variant}.{ext}.
func VariantKey(key, variant, ext string) string {
	dir, file := path.Split(key)
	id := strings.TrimSuffix(file, path.Ext(file))
	return dir + id + "_" + variant + "." + ext
}

// maxFilenameBytes caps the kept filename (it is metadata only).
const maxFilenameBytes = 255

// SanitizeFilename keeps a client's filename fit to show: the last path
// element only (either separator), no control or format characters, no
// leading dots, valid UTF-8, at most 255 bytes. It never reaches a key.
func SanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	if len(name) > maxFilenameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 || !utf8.ValidString(ext) {
			ext = ""
		}
		cut := maxFilenameBytes - len(ext)
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	if name == "" {
		return "file"
	}
	return name
}

// checkScopeID validates a user or tenant id from the gateway: 1–128 of
// [A-Za-z0-9._:@-], starting with a letter or digit (so a scope can never
// look like a path trick or a dotfile).
func checkScopeID(kind, id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%s must be 1–128 characters", kind)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && strings.IndexByte("._:@-", c) >= 0)
		if !ok {
			return fmt.Errorf("%s has a character outside A-Z a-z 0-9 . _ : @ - (or does not start with a letter or digit)", kind)
		}
	}
	return nil
}
