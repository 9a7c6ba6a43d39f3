package imagery

import (
	"mime"
	"slices"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// HeadSize is how many leading bytes Sniff needs to decide a type.
const HeadSize = 3072

// ImageTypes are the only types avatars and logos accept, and the only
// ones Process decodes.
var ImageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// forbidden types are refused for every purpose, whatever an allow-list
// says: they run in a browser or on a machine.
var forbidden = map[string]bool{
	"text/html": true, "application/xhtml+xml": true, "image/svg+xml": true,
	"text/javascript": true, "application/javascript": true, "application/x-javascript": true,
	"application/wasm": true, "application/x-shockwave-flash": true, "application/vnd.ms-htmlhelp": true,
	"text/x-php": true, "text/x-shellscript": true, "text/x-python": true, "text/x-perl": true,
	"text/x-ruby": true, "text/x-lua": true, "text/x-tcl": true, "application/x-bytecode.python": true,
	"application/java-archive": true, "application/x-java-applet": true, "application/vnd.android.package-archive": true,
	"application/x-ms-installer": true, "application/vnd.microsoft.portable-executable": true, "application/x-msdownload": true,
	"application/x-elf": true, "application/x-executable": true, "application/x-sharedlib": true,
	"application/x-mach-binary": true, "application/x-object": true, "application/x-coredump": true,
}

// Sniffed is a type detected from a file's first bytes.
type Sniffed struct {
	ContentType string // as the sniffer names it, parameters included: "text/plain; charset=utf-8"
	MediaType   string // without parameters: "text/plain"
	Ext         string // extension for object keys, without the dot: "txt" ("bin" when none is known)
	lineage     []string
}

// Sniff detects the type of a file from its first bytes (HeadSize is enough).
func Sniff(head []byte) Sniffed {
	m := mimetype.Detect(head)
	s := Sniffed{ContentType: m.String(), MediaType: baseType(m.String()), Ext: strings.TrimPrefix(m.Extension(), ".")}
	if s.Ext == "" {
		s.Ext = "bin"
	}
	for p := m; p != nil; p = p.Parent() {
		s.lineage = append(s.lineage, baseType(p.String()))
	}
	return s
}

// Forbidden tells whether the type, or a type it is a kind of, may never be
// stored (HTML, SVG, scripts, executables).
func (s Sniffed) Forbidden() bool {
	for _, t := range append([]string{s.MediaType}, s.lineage...) {
		if forbidden[t] {
			return true
		}
	}
	return false
}

// TypePolicy is an allow-list of media types ("type/subtype" or "type/*").
// The forbidden types are refused even when listed.
type TypePolicy struct {
	accepted []string
}

// NewTypePolicy makes a policy accepting the listed types.
func NewTypePolicy(types []string) TypePolicy {
	var p TypePolicy
	for _, t := range types {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" && !slices.Contains(p.accepted, t) {
			p.accepted = append(p.accepted, t)
		}
	}
	return p
}

// Allows tells whether a file of the sniffed type may be stored. Only the
// detected type itself is matched (a .docx is a ZIP underneath, but
// allowing ZIP does not allow every ZIP-based format).
func (p TypePolicy) Allows(s Sniffed) bool {
	if s.Forbidden() {
		return false
	}
	for _, a := range p.accepted {
		if a == s.MediaType || (strings.HasSuffix(a, "/*") && strings.HasPrefix(s.MediaType, strings.TrimSuffix(a, "*"))) {
			return true
		}
	}
	return false
}

// Accepted lists the accepted types, for error messages.
func (p TypePolicy) Accepted() []string { return slices.Clone(p.accepted) }

func baseType(contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		return mt
	}
	return strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
}
