package imagery

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func pngBytes(t *testing.T) []byte {
	var b bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.NRGBA{255, 0, 0, 255})
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSniffNamesTheRealType(t *testing.T) {
	cases := []struct {
		name, data, media, ext string
	}{
		{"pdf", "%PDF-1.7\n%âãÏÓ\n1 0 obj\n", "application/pdf", "pdf"},
		{"text", "hello, world\n", "text/plain", "txt"},
		{"html named png", "<!DOCTYPE html><html><script>alert(1)</script></html>", "text/html", "html"},
		{"svg", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, "image/svg+xml", "svg"},
		{"elf", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00", "application/x-executable", ""},
		{"exe", "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00", "application/vnd.microsoft.portable-executable", "exe"},
	}
	for _, c := range cases {
		s := Sniff([]byte(c.data))
		if s.MediaType != c.media {
			t.Errorf("%s: sniffed %s (%s), want %s", c.name, s.MediaType, s.ContentType, c.media)
		}
		if c.ext != "" && s.Ext != c.ext {
			t.Errorf("%s: ext %q, want %q", c.name, s.Ext, c.ext)
		}
	}
	if s := Sniff(pngBytes(t)); s.MediaType != "image/png" || s.Ext != "png" {
		t.Errorf("png: %+v", s)
	}
	if s := Sniff([]byte("hello\n")); s.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("text content type keeps its charset: %q", s.ContentType)
	}
}

func TestPolicyRefusesDangerousTypesEvenWhenListed(t *testing.T) {
	p := NewTypePolicy([]string{"text/*", "image/*", "application/*"})
	for _, data := range []string{
		"<!DOCTYPE html><html><body>x</body></html>",
		`<svg xmlns="http://www.w3.org/2000/svg"></svg>`,
		"#!/bin/sh\nrm -rf /\n",
		"#!/usr/bin/env node\nconsole.log(1)\n",
		"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
		"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00",
	} {
		if s := Sniff([]byte(data)); p.Allows(s) {
			t.Errorf("%s allowed", s.ContentType)
		}
	}
	if !p.Allows(Sniff([]byte("plain words\n"))) || !p.Allows(Sniff(pngBytes(t))) {
		t.Error("ordinary types refused by wildcards")
	}
}

func TestPolicyMatchesTheDetectedTypeOnly(t *testing.T) {
	p := NewTypePolicy([]string{"application/pdf", "TEXT/PLAIN"})
	if !p.Allows(Sniff([]byte("%PDF-1.4\n"))) || !p.Allows(Sniff([]byte("abc\n"))) {
		t.Error("listed types refused")
	}
	if p.Allows(Sniff(pngBytes(t))) {
		t.Error("png allowed by a list without it")
	}
	if csv := Sniff([]byte("a,b,c\n1,2,3\n4,5,6\n")); p.Allows(csv) {
		t.Errorf("%s allowed as its parent text/plain", csv.MediaType)
	}
	if got := NewTypePolicy(ImageTypes).Accepted(); len(got) != 4 {
		t.Errorf("accepted %v", got)
	}
}
