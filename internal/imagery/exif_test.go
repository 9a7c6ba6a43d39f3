package imagery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image/color"
	"image/jpeg"
	"testing"
)

func TestJPEGOrientation(t *testing.T) {
	soi := []byte{0xFF, 0xD8}
	sos := []byte{0xFF, 0xDA, 0, 2}
	app0 := jpegSegment(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	xmp := xmpSegment("x")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name string
		head []byte
		want orientation
	}{
		{"little endian", cat(soi, exifSegment(binary.LittleEndian, 6, "d"), sos), 6},
		{"big endian", cat(soi, exifSegment(binary.BigEndian, 8, "d"), sos), 8},
		{"after JFIF and XMP, with fill bytes", cat(soi, app0, []byte{0xFF, 0xFF}, xmp, exifSegment(binary.BigEndian, 3, "d"), sos), 3},
		{"none", cat(soi, app0, sos), upright},
		{"after the scan starts", cat(soi, sos, exifSegment(binary.LittleEndian, 6, "d")), upright},
		{"value 0", cat(soi, exifSegment(binary.LittleEndian, 0, "d"), sos), upright},
		{"value 9", cat(soi, exifSegment(binary.LittleEndian, 9, "d"), sos), upright},
		{"truncated EXIF", cat(soi, exifSegment(binary.LittleEndian, 6, "d"))[:20], upright},
		{"not a JPEG", []byte("\x89PNG\r\n\x1a\n"), upright},
		{"empty", nil, upright},
		{"segment length 0", cat(soi, []byte{0xFF, 0xE1, 0, 0}, sos), upright},
	} {
		if got := jpegOrientation(c.head); got != c.want {
			t.Errorf("%s: orientation %d, want %d", c.name, got, c.want)
		}
	}
}

func TestTIFFOrientationLongType(t *testing.T) {
	tiff := tiffIFD0(binary.BigEndian, 0, "d")
	// Rewrite the Orientation entry (the second) as LONG 5.
	e := tiff[10+12:]
	binary.BigEndian.PutUint16(e[2:], 4)
	binary.BigEndian.PutUint32(e[8:], 5)
	if o, ok := tiffOrientation(tiff); !ok || o != 5 {
		t.Errorf("got %d %v, want 5", o, ok)
	}
}

// FuzzOrientation feeds arbitrary bytes to the EXIF parser, alone and
// behind a JPEG start and an APP1 EXIF header: it must not panic and must
// return a valid orientation.
func FuzzOrientation(f *testing.F) {
	f.Add(exifSegment(binary.LittleEndian, 6, "d")[10:])
	f.Add(exifSegment(binary.BigEndian, 8, "description")[10:])
	f.Add([]byte("MM\x00\x2a\xff\xff\xff\xf0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, head := range [][]byte{
			data,
			append([]byte{0xFF, 0xD8}, data...),
			append([]byte{0xFF, 0xD8}, jpegSegment(0xE1, append([]byte("Exif\x00\x00"), data...))...),
		} {
			if o := jpegOrientation(head); o < 1 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
		if o, ok := tiffOrientation(data); o < 1 || o > 8 || (!ok && o != upright) {
			t.Fatalf("tiffOrientation = %d, %v", o, ok)
		}
	})
}

// FuzzHeader runs the whole pipeline on arbitrary bytes under every
// sniffed type, with limits small enough to keep each run quick: it must
// not panic, and any failure must be ErrInvalidImage.
func FuzzHeader(f *testing.F) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, photoLike(24, 16), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(withJPEGMetadata(jpg.Bytes(), exifSegment(binary.BigEndian, 7, "d")))
	f.Add(pngHeaderOnly(30000, 30000))
	f.Add(logoPNG(f, 12, 8))
	f.Add(twoFrameGIF(f, 8, 6))
	f.Add(losslessWebP(8, 4, color.NRGBA{1, 2, 3, 4}, color.NRGBA{1, 200, 3, 4}))
	opts := Options{
		MaxPixels: 1 << 16, MaxSide: 1024, MasterMaxSide: 32,
		Variants: []VariantSpec{{Name: "a", Size: 16, Mode: Fill}, {Name: "b", Size: 8, Mode: Fit}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range []string{"image/jpeg", "image/png", "image/gif", "image/webp"} {
			res, err := Process(bytes.NewReader(data), typ, opts)
			if err != nil {
				if !errors.Is(err, ErrInvalidImage) {
					t.Fatalf("%s: %v", typ, err)
				}
				continue
			}
			if res.Master.Width > 32 || res.Master.Height > 32 || len(res.Variants) != 2 {
				t.Fatalf("%s: master %dx%d, %d variants", typ, res.Master.Width, res.Master.Height, len(res.Variants))
			}
		}
	})
}
