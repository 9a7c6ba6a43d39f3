// Package imagerytest generates image fixtures for tests: camera JPEGs with
// EXIF orientation and planted metadata, logos with alpha, animated GIFs,
// hand-made lossless WebP, and PNG headers that claim huge sizes.
package imagerytest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"sync"
)

// Every fixture is generated here; the package has no binary test files.

// Marker is planted in the metadata of fixtures; no output may hold it.
const Marker = "SECRET-MARKER-do-not-leak-7f3a"

// Photo12MP is the 12 MP camera photo shared by tests and benchmarks:
// 4032×3024 stored pixels, EXIF orientation 6 (shown as a 3024×4032
// portrait), metadata carrying Marker. It is made once per test
// binary (about a second).
var Photo12MP = sync.OnceValue(func() []byte {
	return CameraJPEG(4032, 3024, 6, 92)
})

// CameraJPEG encodes a photo-like w×h image the way a camera stores it:
// EXIF (with orientation o and the marker as ImageDescription), XMP and a
// comment, all holding Marker.
func CameraJPEG(w, h int, o int, quality int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, PhotoLike(w, h), &jpeg.Options{Quality: quality}); err != nil {
		panic(err)
	}
	return WithJPEGMetadata(buf.Bytes(),
		EXIFSegment(binary.LittleEndian, o, Marker),
		XMPSegment(Marker),
		JPEGSegment(0xFE, []byte("comment: "+Marker)),
	)
}

// PhotoLike draws something with a photo's statistics: smooth gradients
// and shading, hard-edged objects, a patch of fine detail and sensor
// noise. The top-left corner holds a saturated red block (an orientation
// landmark).
func PhotoLike(w, h int) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	colX, rowY := make([]float64, w), make([]float64, h)
	for x := range colX {
		fx := float64(x) / float64(w)
		colX[x] = 60*fx + 18*math.Sin(fx*9)
	}
	for y := range rowY {
		fy := float64(y) / float64(h)
		rowY[y] = 70 + 50*fy + 14*math.Cos(fy*7)
	}
	type disc struct{ cx, cy, r2, luma float64 }
	discs := []disc{
		{0.3, 0.6, 0.02, 200}, {0.7, 0.35, 0.01, 40}, {0.55, 0.75, 0.005, 230}, {0.85, 0.8, 0.015, 90},
	}
	for y := range h {
		fy := float64(y) / float64(h)
		row := m.Y[y*m.YStride : y*m.YStride+w]
		for x := range row {
			fx := float64(x) / float64(w)
			v := colX[x] + rowY[y]
			for _, d := range discs {
				dx, dy := fx-d.cx, (fy-d.cy)*float64(h)/float64(w)
				if dx*dx+dy*dy < d.r2 {
					v = d.luma + 20*fx
				}
			}
			if fx > 0.1 && fx < 0.25 && fy > 0.15 && fy < 0.35 && (x/3+y/5)%2 == 0 { // fine texture
				v += 40
			}
			v += float64(rng.IntN(13)+rng.IntN(13)) - 12 // noise, roughly ±6
			row[x] = uint8(max(0, min(255, v)))
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	for y := range ch {
		for x := range cw {
			fx, fy := float64(x)/float64(cw), float64(y)/float64(ch)
			m.Cb[y*m.CStride+x] = uint8(100 + 50*fy + float64(rng.IntN(5)))
			m.Cr[y*m.CStride+x] = uint8(150 - 40*fx + 15*math.Sin(fy*5) + float64(rng.IntN(5)))
		}
	}
	fillYCbCr(m, image.Rect(0, 0, max(1, w/8), max(1, h/8)), color.RGBA{220, 20, 30, 255})
	return m
}

// fillYCbCr paints r of m in colour c.
func fillYCbCr(m *image.YCbCr, r image.Rectangle, c color.RGBA) {
	yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m.Y[m.YOffset(x, y)] = yy
			m.Cb[m.COffset(x, y)] = cb
			m.Cr[m.COffset(x, y)] = cr
		}
	}
}

// WithJPEGMetadata inserts segments right after the SOI marker.
func WithJPEGMetadata(jpg []byte, segments ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segments {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// JPEGSegment frames data as a marker segment.
func JPEGSegment(marker byte, data []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(data)+2))
	return append(s, data...)
}

// EXIFSegment builds an APP1 EXIF segment whose IFD0 holds
// ImageDescription and Orientation, in the given byte order.
func EXIFSegment(order binary.ByteOrder, o int, description string) []byte {
	return JPEGSegment(0xE1, append([]byte("Exif\x00\x00"), TIFFIFD0(order, o, description)...))
}

// TIFFIFD0 builds a TIFF header and IFD0 with ImageDescription (0x010E,
// ASCII) and Orientation (0x0112, SHORT).
func TIFFIFD0(order binary.ByteOrder, o int, description string) []byte {
	desc := append([]byte(description), 0)
	const entries = 2
	dataAt := 8 + 2 + entries*12 + 4
	t := make([]byte, dataAt)
	if order == binary.ByteOrder(binary.LittleEndian) {
		copy(t, "II")
	} else {
		copy(t, "MM")
	}
	order.PutUint16(t[2:], 42)
	order.PutUint32(t[4:], 8)
	order.PutUint16(t[8:], entries)
	e := t[10:]
	order.PutUint16(e[0:], 0x010E)
	order.PutUint16(e[2:], 2)
	order.PutUint32(e[4:], uint32(len(desc)))
	order.PutUint32(e[8:], uint32(dataAt))
	order.PutUint16(e[12:], 0x0112)
	order.PutUint16(e[14:], 3)
	order.PutUint32(e[16:], 1)
	order.PutUint16(e[20:], uint16(o))
	return append(t, desc...)
}

// XMPSegment builds an APP1 XMP packet holding description.
func XMPSegment(description string) []byte {
	packet := `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` +
		`<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>` + description +
		`</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>`
	return JPEGSegment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), packet...))
}

// EncodePNG encodes m, failing the test on error.
func EncodePNG(m image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// LogoPNG is a w×h logo: transparent background, an opaque blue bar with
// a soft-edged red disc.
func LogoPNG(w, h int) []byte {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			switch {
			case x > w/10 && x < w*9/10 && y > h/4 && y < h*3/4:
				m.SetNRGBA(x, y, color.NRGBA{20, 60, 200, 255})
			default:
				dx, dy := float64(x-w/2)/float64(h), float64(y-h/2)/float64(h)
				a := max(0, min(255, 255*(1-4*math.Hypot(dx, dy))))
				m.SetNRGBA(x, y, color.NRGBA{230, 30, 30, uint8(a)})
			}
		}
	}
	return EncodePNG(m)
}

// PNGHeaderOnly is a PNG signature and an IHDR chunk (with a valid CRC)
// claiming w×h 8-bit RGBA, and nothing else: what a decompression bomb
// looks like to the size check.
func PNGHeaderOnly(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // bit depth, colour type RGBA
	chunk := append([]byte("IHDR"), ihdr...)
	out := append([]byte("\x89PNG\r\n\x1a\n"), 0, 0, 0, 13)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

// TwoFrameGIF is an animation whose first frame is all green and second
// all magenta.
func TwoFrameGIF(w, h int) []byte {
	anim := &gif.GIF{}
	for _, c := range []color.Color{color.RGBA{0, 200, 0, 255}, color.RGBA{200, 0, 200, 255}} {
		frame := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
		idx := uint8(frame.Palette.Index(c))
		for i := range frame.Pix {
			frame.Pix[i] = idx
		}
		anim.Image = append(anim.Image, frame)
		anim.Delay = append(anim.Delay, 10)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// LosslessWebP hand-assembles a VP8L (lossless WebP) image of w×h (at most
// 16384 a side) in two colours: pixels left of w/2 are left, the others
// right. The colours differ in green only, so each pixel takes one bit:
// green uses a two-symbol prefix code, red, blue and alpha one-symbol codes
// (zero bits). No transform, no colour cache, no backward references.
func LosslessWebP(w, h int, left, right color.NRGBA) []byte {
	var bw lsbBitWriter
	bw.write(0x2f, 8) // VP8L signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(1, 1) // alpha is used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	simpleCode := func(symbols ...uint8) {
		bw.write(1, 1) // simple code
		bw.write(uint32(len(symbols)-1), 1)
		bw.write(1, 1) // first symbol takes 8 bits
		for _, s := range symbols {
			bw.write(uint32(s), 8)
		}
	}
	simpleCode(left.G, right.G) // green: code 0 is left.G, code 1 right.G
	simpleCode(left.R)
	simpleCode(left.B)
	simpleCode(left.A)
	simpleCode(0) // distance, unused
	for range h {
		for x := range w {
			if x < w/2 {
				bw.write(0, 1)
			} else {
				bw.write(1, 1)
			}
		}
	}
	data := bw.bytes()
	chunk := binary.LittleEndian.AppendUint32([]byte("VP8L"), uint32(len(data)))
	chunk = append(chunk, data...)
	if len(data)%2 == 1 {
		chunk = append(chunk, 0)
	}
	riff := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+len(chunk)))
	riff = append(riff, "WEBP"...)
	return append(riff, chunk...)
}

// lsbBitWriter packs bits least significant first, as VP8L reads them.
type lsbBitWriter struct {
	buf   []byte
	acc   uint64
	nBits uint
}

func (b *lsbBitWriter) write(v uint32, n uint) {
	b.acc |= uint64(v&(1<<n-1)) << b.nBits
	b.nBits += n
	for b.nBits >= 8 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc >>= 8
		b.nBits -= 8
	}
}

func (b *lsbBitWriter) bytes() []byte {
	if b.nBits > 0 {
		return append(b.buf, byte(b.acc))
	}
	return b.buf
}
