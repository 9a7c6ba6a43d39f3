// Package imagery turns one uploaded image into a clean, re-encoded master
// and a set of resized variants (avatars, logos).
//
// The upload is read once, as a stream: only the header bytes the decoder
// needs to learn the image's size are buffered (to refuse decompression
// bombs before any pixel is allocated), then they are replayed in front of
// the rest of the body into the decoder of the sniffed type. Nothing of the
// original file is kept: every output is encoded from pixels, so EXIF, XMP,
// ICC profiles and comments cannot survive.
//
// The pipeline is built for speed on large photos: the master is resampled
// straight from the decoded planes (YCbCr photos are never converted to
// RGB), orientation is applied as the small master is written rather than
// to the full image, and each variant is resampled from the smallest image
// already made that covers it (the master, then the variant above it).
// Large images are resampled and encoded on up to four goroutines (no more
// than GOMAXPROCS), and the master is encoded while the variants are made.
package imagery

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Errors a caller tells apart with errors.Is. A failure to read the body
// itself (a client gone, a size limit, a cancelled context) is returned as
// that error, wrapped, and is neither of these.
var (
	// ErrInvalidImage reports bytes that are not a usable image of the
	// sniffed type: corrupt, truncated, or too large (a decompression bomb).
	ErrInvalidImage = errors.New("imagery: invalid image")
	// ErrUnsupportedType reports a sniffed type this package does not decode.
	ErrUnsupportedType = errors.New("imagery: unsupported image type")
)

// Defaults used for an Options field left at zero.
const (
	DefaultMaxPixels     = 40_000_000
	DefaultMaxSide       = 16384
	DefaultMasterMaxSide = 2048
)

// Output encodings. JPEG is used for opaque images, PNG for any image with
// transparency.
const (
	masterJPEGQuality  = 90
	variantJPEGQuality = 85
)

// Mode says how a variant fits into its Size×Size box.
type Mode int

const (
	// Fill crops the centre square of the master and scales it to
	// Size×Size. It never upscales: a master whose shorter side is below
	// Size gives a square of that shorter side instead.
	Fill Mode = iota + 1
	// Fit scales the whole master to fit inside Size×Size, keeping its
	// aspect ratio (sides rounded to the nearest pixel, at least 1). It
	// never upscales: a master already inside the box keeps its size.
	Fit
)

func (m Mode) String() string {
	switch m {
	case Fill:
		return "fill"
	case Fit:
		return "fit"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// VariantSpec describes one resized variant.
type VariantSpec struct {
	Name string // returned in Encoded.Name, e.g. "lg"
	Size int    // side of the box, in pixels
	Mode Mode
}

// Options bound the work done for one upload and list its variants.
type Options struct {
	// MaxPixels and MaxSide refuse decompression bombs from the image
	// header, before any pixel is decoded. Zero means the default.
	MaxPixels int64
	MaxSide   int
	// MasterMaxSide caps the longest side of the master. Zero means the
	// default.
	MasterMaxSide int
	// Variants are made from the master, in any order here; Result.Variants
	// follows this order.
	Variants []VariantSpec
}

// Encoded is one stored rendition of the upload.
type Encoded struct {
	Name        string // "master" or the VariantSpec's Name
	Data        []byte
	ContentType string // "image/jpeg" or "image/png"
	Ext         string // "jpg" or "png"
	Width       int
	Height      int
}

// Result holds the master and the variants of one upload.
type Result struct {
	Master   Encoded
	Variants []Encoded // Variants[i] is made for Options.Variants[i]
}

// masterName is the Name of Result.Master.
const masterName = "master"

// Process decodes an image from body, whose type was sniffed from its first
// bytes as sniffedType ("image/jpeg", "image/png", "image/gif" or
// "image/webp"), and returns its master and variants. body is read once,
// as a stream; it is not drained past the end of the image.
//
// Errors: ErrUnsupportedType for another type; ErrInvalidImage for a
// corrupt, truncated or oversized image; the body's own read error (for
// example *http.MaxBytesError, io.ErrUnexpectedEOF or a context error),
// wrapped, when reading the body failed, whatever the decoder made of it.
func Process(body io.Reader, sniffedType string, opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	format, ok := formatOf(sniffedType)
	if !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrUnsupportedType, sniffedType)
	}
	src, err := decodeUpload(body, format, opts)
	if err != nil {
		return Result{}, err
	}

	// Past this point nothing refers to the full-size pixels any more: the
	// collector may reclaim them while the rest runs.
	master := makeMaster(src.pixels, src.orientation, opts.MasterMaxSide)
	opaque := master.opaque()

	// The master's encoding, the longest step left, runs alongside the
	// variants, which only read the master's pixels.
	var res Result
	var masterErr error
	var wg sync.WaitGroup
	wg.Go(func() { res.Master, masterErr = encodeRaster(masterName, master, opaque, masterJPEGQuality) })
	variants := makeVariants(master, opts.Variants)
	res.Variants = make([]Encoded, len(variants))
	for i, v := range variants {
		if res.Variants[i], err = encodeRaster(opts.Variants[i].Name, v, opaque, variantJPEGQuality); err != nil {
			break
		}
	}
	wg.Wait()
	if err = cmp.Or(masterErr, err); err != nil {
		return Result{}, err
	}
	return res, nil
}

// withDefaults fills zero fields with the defaults and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.MaxPixels == 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.MaxSide == 0 {
		o.MaxSide = DefaultMaxSide
	}
	if o.MasterMaxSide == 0 {
		o.MasterMaxSide = DefaultMasterMaxSide
	}
	if o.MaxPixels < 0 || o.MaxSide < 0 || o.MasterMaxSide < 0 {
		return o, fmt.Errorf("imagery: negative limit in options %+v", o)
	}
	for _, v := range o.Variants {
		if v.Size <= 0 || (v.Mode != Fill && v.Mode != Fit) || v.Name == "" || v.Name == masterName {
			return o, fmt.Errorf("imagery: invalid variant %+v", v)
		}
	}
	o.Variants = slices.Clone(o.Variants)
	return o, nil
}
