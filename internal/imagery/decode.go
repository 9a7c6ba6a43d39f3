package imagery

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// maxHeaderBytes bounds what is buffered before the image's size is known.
// A JPEG's metadata segments (EXIF, XMP, ICC profile, Photoshop resources)
// all come before its frame header, so this is generous; the other formats
// state their size within their first few dozen bytes.
const maxHeaderBytes = 1 << 20

// imageFormat is one decodable type. Each uses only its own decoder, never
// image.Decode: the registry of image.Decode holds whatever any imported
// package registered (imaging registers TIFF and BMP, which have known
// memory exhaustion bugs).
type imageFormat struct {
	name         string
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(r io.Reader, cfg image.Config) (image.Image, error)
	// hasEXIFOrientation says the header may carry an EXIF orientation that
	// this package applies. Only JPEG's is read: WebP can carry EXIF in a
	// chunk after its VP8X header, but cameras do not write WebP, and a
	// WebP's EXIF orientation is ignored (as browsers long did).
	hasEXIFOrientation bool
}

// formatOf returns the decoder for a sniffed media type.
func formatOf(sniffedType string) (imageFormat, bool) {
	switch sniffedType {
	case "image/jpeg":
		return imageFormat{name: "jpeg", decodeConfig: jpeg.DecodeConfig, decode: decodeJPEG, hasEXIFOrientation: true}, true
	case "image/png":
		return imageFormat{name: "png", decodeConfig: png.DecodeConfig, decode: decodePNG}, true
	case "image/gif":
		return imageFormat{name: "gif", decodeConfig: gif.DecodeConfig, decode: decodeGIFFirstFrame}, true
	case "image/webp":
		return imageFormat{name: "webp", decodeConfig: webp.DecodeConfig, decode: decodeWebP}, true
	}
	return imageFormat{}, false
}

func decodeJPEG(r io.Reader, _ image.Config) (image.Image, error) { return jpeg.Decode(r) }
func decodePNG(r io.Reader, _ image.Config) (image.Image, error)  { return png.Decode(r) }
func decodeWebP(r io.Reader, _ image.Config) (image.Image, error) { return webp.Decode(r) }

// decodeGIFFirstFrame decodes the first frame only (gif.Decode stops there;
// gif.DecodeAll would decode every frame) and places it on the logical
// screen, transparent around it, as a browser shows it.
func decodeGIFFirstFrame(r io.Reader, cfg image.Config) (image.Image, error) {
	frame, err := gif.Decode(r)
	if err != nil {
		return nil, err
	}
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if frame.Bounds() == screen {
		return frame, nil
	}
	canvas := image.NewRGBA(screen)
	draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return canvas, nil
}

// decodedUpload is the full-size image and the orientation to apply to it.
type decodedUpload struct {
	pixels      raster
	orientation orientation
}

// decodeUpload reads the header, refuses an oversized image, reads the EXIF
// orientation, then decodes the pixels, reading body exactly once.
func decodeUpload(body io.Reader, f imageFormat, opts Options) (decodedUpload, error) {
	br := &bodyReader{r: body}
	head := &headerRecorder{r: br, limit: maxHeaderBytes}
	cfg, err := f.decodeConfig(head)
	if err != nil {
		if br.err == nil && head.full() {
			return decodedUpload{}, fmt.Errorf("%w: %s header is longer than %d bytes", ErrInvalidImage, f.name, maxHeaderBytes)
		}
		return decodedUpload{}, br.failure(fmt.Errorf("%s header: %v", f.name, err))
	}
	if err := checkSize(cfg, opts); err != nil {
		return decodedUpload{}, fmt.Errorf("%w: %s: %v", ErrInvalidImage, f.name, err)
	}
	o := upright
	if f.hasEXIFOrientation {
		o = jpegOrientation(head.buf)
	}

	img, err := f.decode(io.MultiReader(bytes.NewReader(head.buf), br), cfg)
	if err != nil {
		return decodedUpload{}, br.failure(fmt.Errorf("%s: %v", f.name, err))
	}
	if br.err != nil {
		// The image decoded, but a read ahead of it failed: the body is
		// still broken (often a size limit), so the upload is.
		return decodedUpload{}, br.failure(nil)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return decodedUpload{}, fmt.Errorf("%w: %s: decoded %dx%d, header said %dx%d", ErrInvalidImage, f.name, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return decodedUpload{pixels: rasterOf(img), orientation: o}, nil
}

// checkSize is the decompression-bomb guard, run on the header alone.
func checkSize(cfg image.Config, opts Options) error {
	switch {
	case cfg.Width <= 0 || cfg.Height <= 0:
		return fmt.Errorf("empty image %dx%d", cfg.Width, cfg.Height)
	case cfg.Width > opts.MaxSide || cfg.Height > opts.MaxSide:
		return fmt.Errorf("%dx%d has a side longer than %d", cfg.Width, cfg.Height, opts.MaxSide)
	case int64(cfg.Width)*int64(cfg.Height) > opts.MaxPixels:
		return fmt.Errorf("%dx%d has more than %d pixels", cfg.Width, cfg.Height, opts.MaxPixels)
	}
	return nil
}

// bodyReader remembers the first error the upload body itself returned, so
// that a failing body is told apart from bad bytes whatever a decoder makes
// of the error (decoders turn a short read into io.ErrUnexpectedEOF).
type bodyReader struct {
	r   io.Reader
	err error // first read error other than io.EOF
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// failure explains a decoding failure: the body's own error if reading it
// failed, otherwise ErrInvalidImage with the decoder's message. The
// decoder's error is not wrapped, so that a truncated file's
// io.ErrUnexpectedEOF is not taken for a client gone away.
func (b *bodyReader) failure(decodeErr error) error {
	if b.err != nil {
		return fmt.Errorf("imagery: reading the upload: %w", b.err)
	}
	return fmt.Errorf("%w: %v", ErrInvalidImage, decodeErr)
}

// errHeaderTooLong stops a header that goes on past maxHeaderBytes.
var errHeaderTooLong = errors.New("header too long")

// headerRecorder passes reads through while keeping a copy of every byte
// read, up to limit, so that what DecodeConfig consumed (read-ahead
// included) can be replayed in front of the rest of the body.
type headerRecorder struct {
	r     io.Reader
	buf   []byte
	limit int
}

func (h *headerRecorder) Read(p []byte) (int, error) {
	room := h.limit - len(h.buf)
	if room <= 0 {
		return 0, errHeaderTooLong
	}
	if len(p) > room {
		p = p[:room]
	}
	n, err := h.r.Read(p)
	h.buf = append(h.buf, p[:n]...)
	return n, err
}

func (h *headerRecorder) full() bool { return len(h.buf) >= h.limit }
