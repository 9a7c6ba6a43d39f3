package imagery

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/disintegration/imaging"
)

func avatarOptions() Options {
	return Options{
		MaxPixels: 40_000_000, MaxSide: 16384, MasterMaxSide: 2048,
		Variants: []VariantSpec{{Name: "lg", Size: 256, Mode: Fill}, {Name: "md", Size: 128, Mode: Fill}, {Name: "sm", Size: 64, Mode: Fill}},
	}
}

func logoOptions() Options {
	return Options{
		MaxPixels: 40_000_000, MaxSide: 16384, MasterMaxSide: 2048,
		Variants: []VariantSpec{{Name: "lg", Size: 512, Mode: Fit}, {Name: "md", Size: 128, Mode: Fit}, {Name: "sm", Size: 64, Mode: Fit}},
	}
}

// size is a width and height, for compact expectations.
type size struct{ w, h int }

func (s size) String() string { return fmt.Sprintf("%dx%d", s.w, s.h) }

// process runs Process on data and fails the test on error.
func process(t testing.TB, data []byte, sniffedType string, opts Options) Result {
	t.Helper()
	res, err := Process(bytes.NewReader(data), sniffedType, opts)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return res
}

// decodeEncoded decodes one output, checking that its type, extension and
// size are what it says.
func decodeEncoded(t testing.TB, e Encoded) image.Image {
	t.Helper()
	var img image.Image
	var err error
	switch {
	case e.ContentType == "image/jpeg" && e.Ext == "jpg":
		img, err = jpeg.Decode(bytes.NewReader(e.Data))
	case e.ContentType == "image/png" && e.Ext == "png":
		img, err = png.Decode(bytes.NewReader(e.Data))
	default:
		t.Fatalf("%s: content type %q with extension %q", e.Name, e.ContentType, e.Ext)
	}
	if err != nil {
		t.Fatalf("%s: decoding the output: %v", e.Name, err)
	}
	if got := (size{img.Bounds().Dx(), img.Bounds().Dy()}); got != (size{e.Width, e.Height}) {
		t.Fatalf("%s: encoded %v, says %dx%d", e.Name, got, e.Width, e.Height)
	}
	return img
}

// allOutputs lists the master then the variants.
func allOutputs(res Result) []Encoded { return append([]Encoded{res.Master}, res.Variants...) }

// checkShapes checks every output's name, type and size.
func checkShapes(t *testing.T, res Result, contentType string, want map[string]size) {
	t.Helper()
	if len(res.Variants)+1 != len(want) {
		t.Fatalf("got %d variants, want %d", len(res.Variants), len(want)-1)
	}
	for _, e := range allOutputs(res) {
		decodeEncoded(t, e)
		if e.ContentType != contentType {
			t.Errorf("%s is %s, want %s", e.Name, e.ContentType, contentType)
		}
		if got := (size{e.Width, e.Height}); got != want[e.Name] {
			t.Errorf("%s is %v, want %v", e.Name, got, want[e.Name])
		}
	}
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r>>8 > 150 && g>>8 < 100 && b>>8 < 100
}

func TestAvatarFromRotatedCameraPhoto(t *testing.T) {
	data := photoFixture()
	for _, leak := range []string{"Exif", secretMarker} {
		if !bytes.Contains(data, []byte(leak)) {
			t.Fatalf("fixture lacks %q", leak)
		}
	}
	res := process(t, data, "image/jpeg", avatarOptions())
	checkShapes(t, res, "image/jpeg", map[string]size{
		"master": {1536, 2048}, "lg": {256, 256}, "md": {128, 128}, "sm": {64, 64},
	})
	for _, e := range allOutputs(res) {
		for _, leak := range []string{"Exif", secretMarker, "http://ns.adobe.com/xap"} {
			if bytes.Contains(e.Data, []byte(leak)) {
				t.Errorf("%s holds %q from the upload's metadata", e.Name, leak)
			}
		}
	}
	// Stored top-left, rotated 90° clockwise: shown top-right.
	master := decodeEncoded(t, res.Master)
	if c := master.At(1536-10, 10); !isRed(c) {
		t.Errorf("master top-right is %v, want the red landmark", c)
	}
	if c := master.At(10, 10); isRed(c) {
		t.Errorf("master top-left is red: orientation not applied")
	}
}

func TestOrientations(t *testing.T) {
	// A 64×48 image stored with its red landmark top-left. After applying
	// orientation o the landmark is in the given corner, and portrait
	// orientations swap the sides.
	corners := map[orientation]string{1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}
	for o := orientation(1); o <= 8; o++ {
		t.Run(fmt.Sprint(o), func(t *testing.T) {
			for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				var buf bytes.Buffer
				if err := jpeg.Encode(&buf, photoLike(64, 48), &jpeg.Options{Quality: 95}); err != nil {
					t.Fatal(err)
				}
				data := withJPEGMetadata(buf.Bytes(), exifSegment(order, o, "x"))
				res := process(t, data, "image/jpeg", avatarOptions())
				want := size{64, 48}
				if o.swapsAxes() {
					want = size{48, 64}
				}
				if got := (size{res.Master.Width, res.Master.Height}); got != want {
					t.Fatalf("%v: master is %v, want %v", order, got, want)
				}
				master := decodeEncoded(t, res.Master)
				at := map[string]image.Point{"tl": {1, 1}, "tr": {want.w - 2, 1}, "bl": {1, want.h - 2}, "br": {want.w - 2, want.h - 2}}
				for corner, p := range at {
					if red := isRed(master.At(p.X, p.Y)); red != (corner == corners[o]) {
						t.Errorf("%v: corner %s red=%v, want the landmark at %s", order, corner, red, corners[o])
					}
				}
				// And the whole picture matches imaging's own orientation.
				ref, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
				if err != nil {
					t.Fatal(err)
				}
				if d := meanAbsDiff(master, ref); d > 4 {
					t.Errorf("%v: master differs from imaging's orientation by %.1f per channel", order, d)
				}
			}
		})
	}
}

// meanAbsDiff is the mean absolute difference per 8-bit RGB channel.
func meanAbsDiff(a, b image.Image) float64 {
	if a.Bounds().Size() != b.Bounds().Size() {
		return math.Inf(1)
	}
	var sum float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			sum += math.Abs(float64(r1>>8)-float64(r2>>8)) + math.Abs(float64(g1>>8)-float64(g2>>8)) + math.Abs(float64(b1>>8)-float64(b2>>8))
		}
	}
	return sum / float64(3*ab.Dx()*ab.Dy())
}

func TestGrayJPEGStaysGray(t *testing.T) {
	photo := photoLike(120, 90)
	gray := &image.Gray{Pix: photo.Y, Stride: photo.YStride, Rect: photo.Rect}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, gray, nil); err != nil {
		t.Fatal(err)
	}
	res := process(t, withJPEGMetadata(buf.Bytes(), exifSegment(binary.BigEndian, 8, "x")), "image/jpeg", avatarOptions())
	checkShapes(t, res, "image/jpeg", map[string]size{
		"master": {90, 120}, "lg": {90, 90}, "md": {90, 90}, "sm": {64, 64},
	})
	for _, e := range allOutputs(res) {
		if _, ok := decodeEncoded(t, e).(*image.Gray); !ok {
			t.Errorf("%s is not a grey JPEG", e.Name)
		}
	}
}

func TestLogoWithAlpha(t *testing.T) {
	// Fit rounds each side to the nearest pixel: 1000×400 into 512 is
	// 512×204.8 → 512×205; into 128, 128×51.2 → 128×51; into 64,
	// 64×25.6 → 64×26.
	res := process(t, logoPNG(t, 1000, 400), "image/png", logoOptions())
	checkShapes(t, res, "image/png", map[string]size{
		"master": {1000, 400}, "lg": {512, 205}, "md": {128, 51}, "sm": {64, 26},
	})
	for _, e := range allOutputs(res) {
		img := decodeEncoded(t, e)
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("%s: corner alpha %d, want transparent", e.Name, a>>8)
		}
		c := color.NRGBAModel.Convert(img.At(e.Width*3/10, e.Height/2)).(color.NRGBA)
		if c.A != 255 || c.B < 180 || c.R > 40 {
			t.Errorf("%s: bar is %v, want opaque blue", e.Name, c)
		}
	}
}

func TestSmallImagesAreNotUpscaled(t *testing.T) {
	t.Run("fit", func(t *testing.T) {
		res := process(t, logoPNG(t, 100, 50), "image/png", logoOptions())
		checkShapes(t, res, "image/png", map[string]size{
			"master": {100, 50}, "lg": {100, 50}, "md": {100, 50}, "sm": {64, 32},
		})
	})
	t.Run("fill", func(t *testing.T) {
		// Fill never upscales past the master's shorter side: a square of
		// that side instead.
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, photoLike(100, 80), nil); err != nil {
			t.Fatal(err)
		}
		res := process(t, buf.Bytes(), "image/jpeg", avatarOptions())
		checkShapes(t, res, "image/jpeg", map[string]size{
			"master": {100, 80}, "lg": {80, 80}, "md": {80, 80}, "sm": {64, 64},
		})
	})
}

func TestOpaquePNGBecomesJPEG(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for i := range m.Pix {
		m.Pix[i] = 255 // opaque white, alpha channel present
	}
	res := process(t, encodePNG(t, m), "image/png", logoOptions())
	checkShapes(t, res, "image/jpeg", map[string]size{
		"master": {300, 200}, "lg": {300, 200}, "md": {128, 85}, "sm": {64, 43},
	})
}

func TestVariantsFollowTheOptionsOrder(t *testing.T) {
	opts := avatarOptions()
	opts.Variants = []VariantSpec{{Name: "sm", Size: 64, Mode: Fill}, {Name: "wide", Size: 300, Mode: Fit}, {Name: "lg", Size: 256, Mode: Fill}}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photoLike(1200, 600), nil); err != nil {
		t.Fatal(err)
	}
	res := process(t, buf.Bytes(), "image/jpeg", opts)
	var got []string
	for _, e := range res.Variants {
		got = append(got, fmt.Sprintf("%s:%dx%d", e.Name, e.Width, e.Height))
	}
	if want := "[sm:64x64 wide:300x150 lg:256x256]"; fmt.Sprint(got) != want {
		t.Errorf("variants %v, want %s", got, want)
	}
}

func TestAnimatedGIFGivesFirstFrame(t *testing.T) {
	res := process(t, twoFrameGIF(t, 40, 30), "image/gif", avatarOptions())
	checkShapes(t, res, "image/jpeg", map[string]size{
		"master": {40, 30}, "lg": {30, 30}, "md": {30, 30}, "sm": {30, 30},
	})
	for _, e := range allOutputs(res) {
		r, g, b, _ := decodeEncoded(t, e).At(e.Width/2, e.Height/2).RGBA()
		if g>>8 < 150 || r>>8 > 60 || b>>8 > 60 {
			t.Errorf("%s is (%d,%d,%d), want the first frame's green", e.Name, r>>8, g>>8, b>>8)
		}
	}
}

func TestGIFFrameSmallerThanScreen(t *testing.T) {
	frame := image.NewPaletted(image.Rect(10, 10, 30, 20), color.Palette{color.RGBA{0, 0, 255, 255}, color.Transparent})
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, &gif.GIF{
		Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{Width: 40, Height: 30, ColorModel: frame.Palette},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := process(t, buf.Bytes(), "image/gif", logoOptions())
	master := decodeEncoded(t, res.Master)
	if res.Master.ContentType != "image/png" || res.Master.Width != 40 || res.Master.Height != 30 {
		t.Fatalf("master %s %dx%d, want a 40x30 PNG", res.Master.ContentType, res.Master.Width, res.Master.Height)
	}
	if _, _, _, a := master.At(2, 2).RGBA(); a != 0 {
		t.Errorf("outside the frame alpha is %d, want transparent", a>>8)
	}
	if _, _, b, a := master.At(20, 15).RGBA(); a>>8 != 255 || b>>8 != 255 {
		t.Errorf("inside the frame blue %d alpha %d, want opaque blue", b>>8, a>>8)
	}
}

func TestLosslessWebP(t *testing.T) {
	left, right := color.NRGBA{200, 0, 40, 128}, color.NRGBA{200, 220, 40, 128}
	res := process(t, losslessWebP(40, 20, left, right), "image/webp", logoOptions())
	checkShapes(t, res, "image/png", map[string]size{
		"master": {40, 20}, "lg": {40, 20}, "md": {40, 20}, "sm": {40, 20},
	})
	master := decodeEncoded(t, res.Master)
	for p, want := range map[image.Point]color.NRGBA{{5, 10}: left, {35, 10}: right} {
		got := color.NRGBAModel.Convert(master.At(p.X, p.Y)).(color.NRGBA)
		if absDiff(got.R, want.R) > 2 || absDiff(got.G, want.G) > 2 || absDiff(got.B, want.B) > 2 || got.A != want.A {
			t.Errorf("pixel %v is %v, want %v", p, got, want)
		}
	}

	opaque := process(t, losslessWebP(40, 20, color.NRGBA{10, 20, 30, 255}, color.NRGBA{10, 200, 30, 255}), "image/webp", logoOptions())
	if opaque.Master.ContentType != "image/jpeg" {
		t.Errorf("opaque WebP master is %s, want JPEG", opaque.Master.ContentType)
	}
}

func absDiff(a, b uint8) int { return int(max(a, b) - min(a, b)) }

func TestDecompressionBombIsRefusedFromTheHeader(t *testing.T) {
	bomb := pngHeaderOnly(30000, 30000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Process(bytes.NewReader(bomb), "image/png", avatarOptions())
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInvalidImage) {
		t.Fatalf("err = %v, want ErrInvalidImage", err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("refused in %v, %d bytes allocated: %v", elapsed, allocated, err)
	if allocated > 1<<20 {
		t.Errorf("allocated %d bytes refusing a bomb, want < 1 MiB", allocated)
	}
	if elapsed > time.Second {
		t.Errorf("took %v to refuse a bomb", elapsed)
	}
	allocs := testing.AllocsPerRun(10, func() { _, _ = Process(bytes.NewReader(bomb), "image/png", avatarOptions()) })
	t.Logf("%.0f allocations per refusal", allocs)

	for _, c := range []struct {
		name string
		data []byte
	}{
		{"side too long", pngHeaderOnly(20000, 10)},
		{"empty", pngHeaderOnly(0, 10)},
		{"jpeg", jpegClaiming(30000, 30000)},
	} {
		typ := "image/png"
		if c.name == "jpeg" {
			typ = "image/jpeg"
		}
		if _, err := Process(bytes.NewReader(c.data), typ, avatarOptions()); !errors.Is(err, ErrInvalidImage) {
			t.Errorf("%s: err = %v, want ErrInvalidImage", c.name, err)
		}
	}
}

// jpegClaiming is a small valid JPEG whose frame header is patched to
// claim w×h.
func jpegClaiming(w, h uint16) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		panic(err)
	}
	data := buf.Bytes()
	sof := bytes.Index(data, []byte{0xFF, 0xC0})
	binary.BigEndian.PutUint16(data[sof+5:], h)
	binary.BigEndian.PutUint16(data[sof+7:], w)
	return data
}

func TestCorruptImages(t *testing.T) {
	var small bytes.Buffer
	if err := jpeg.Encode(&small, photoLike(200, 150), nil); err != nil {
		t.Fatal(err)
	}
	jpg := small.Bytes()
	webp := losslessWebP(40, 20, color.NRGBA{1, 2, 3, 255}, color.NRGBA{1, 200, 3, 255})
	cases := []struct {
		name, typ string
		data      []byte
	}{
		{"truncated jpeg", "image/jpeg", jpg[:len(jpg)/2]},
		{"jpeg cut in its header", "image/jpeg", jpg[:40]},
		{"empty", "image/jpeg", nil},
		{"png header only", "image/png", pngHeaderOnly(10, 10)},
		{"truncated png", "image/png", logoPNG(t, 50, 50)[:200]},
		{"garbage gif", "image/gif", []byte("GIF89a\x10\x00\x10\x00garbage")},
		{"truncated webp", "image/webp", webp[:len(webp)-12]},
		{"corrupt webp", "image/webp", append(append([]byte{}, webp[:20]...), bytes.Repeat([]byte{0xA5}, 40)...)},
		{"not a webp", "image/webp", jpg},
		{"jpeg sniffed as png", "image/png", jpg},
	}
	for _, c := range cases {
		_, err := Process(bytes.NewReader(c.data), c.typ, avatarOptions())
		if !errors.Is(err, ErrInvalidImage) {
			t.Errorf("%s: err = %v, want ErrInvalidImage", c.name, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: a truncated file must not look like a body read error: %v", c.name, err)
		}
	}
}

func TestHeaderLongerThanTheLimit(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photoLike(32, 32), nil); err != nil {
		t.Fatal(err)
	}
	var padding [][]byte
	for range maxHeaderBytes/65000 + 1 {
		padding = append(padding, jpegSegment(0xE2, make([]byte, 65000)))
	}
	_, err := Process(bytes.NewReader(withJPEGMetadata(buf.Bytes(), padding...)), "image/jpeg", avatarOptions())
	if !errors.Is(err, ErrInvalidImage) {
		t.Fatalf("err = %v, want ErrInvalidImage", err)
	}
}

func TestUnsupportedType(t *testing.T) {
	for _, typ := range []string{"image/tiff", "image/bmp", "image/svg+xml", "image/heic", ""} {
		if _, err := Process(bytes.NewReader(photoFixtureSmall(t)), typ, avatarOptions()); !errors.Is(err, ErrUnsupportedType) {
			t.Errorf("%q: err = %v, want ErrUnsupportedType", typ, err)
		}
	}
}

func photoFixtureSmall(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photoLike(64, 64), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInvalidOptions(t *testing.T) {
	for _, v := range []VariantSpec{{Name: "x", Size: 0, Mode: Fill}, {Name: "x", Size: 10}, {Size: 10, Mode: Fit}, {Name: "master", Size: 10, Mode: Fit}} {
		opts := avatarOptions()
		opts.Variants = append(opts.Variants, v)
		_, err := Process(bytes.NewReader(photoFixtureSmall(t)), "image/jpeg", opts)
		if err == nil || errors.Is(err, ErrInvalidImage) {
			t.Errorf("%+v: err = %v, want an options error", v, err)
		}
	}
}

// failingBody serves data up to failAt bytes, then fails with err.
type failingBody struct {
	data   []byte
	failAt int
	err    error
}

func (f *failingBody) Read(p []byte) (int, error) {
	if f.failAt <= 0 {
		return 0, f.err
	}
	n := copy(p, f.data[:min(f.failAt, len(f.data))])
	f.data, f.failAt = f.data[n:], f.failAt-n
	return n, nil
}

func TestBodyErrorsStayVisible(t *testing.T) {
	var small bytes.Buffer
	if err := jpeg.Encode(&small, photoLike(400, 300), nil); err != nil {
		t.Fatal(err)
	}
	jpg := small.Bytes()
	pngData := logoPNG(t, 200, 100)
	errBoom := errors.New("boom")
	for _, c := range []struct {
		name, typ string
		data      []byte
		failAt    int
	}{
		{"jpeg header", "image/jpeg", jpg, 10},
		{"jpeg pixels", "image/jpeg", jpg, len(jpg) / 2},
		{"png pixels", "image/png", pngData, len(pngData) / 2},
		{"jpeg last bytes", "image/jpeg", jpg, len(jpg) - 1},
	} {
		for _, bodyErr := range []error{errBoom, io.ErrUnexpectedEOF, context.Canceled} {
			_, err := Process(&failingBody{data: c.data, failAt: c.failAt, err: bodyErr}, c.typ, avatarOptions())
			if !errors.Is(err, bodyErr) || errors.Is(err, ErrInvalidImage) {
				t.Errorf("%s, body fails with %v: err = %v, want the body's error and not ErrInvalidImage", c.name, bodyErr, err)
			}
		}
		// The size limit of net/http.
		body := http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(c.data)), int64(c.failAt))
		_, err := Process(body, c.typ, avatarOptions())
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) || errors.Is(err, ErrInvalidImage) {
			t.Errorf("%s, over the size limit: err = %v, want *http.MaxBytesError", c.name, err)
		}
	}
}
