package imagery

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"testing"

	"github.com/disintegration/imaging"
	"golang.org/x/image/draw"
)

// TestAvatarQualityAgainstLanczos compares the delivered 256 avatar (the
// JPEG as stored, decoded) with a reference made the slow, careful way:
// imaging's Lanczos Fill from the full-resolution oriented image. The
// pipeline reduces twice (triangle to the 2048 master, Catmull-Rom from
// it) and through 4:2:0 planes, then encodes at quality 85; the reference
// alone through the same JPEG encoding shows the ceiling that encoding
// sets.
func TestAvatarQualityAgainstLanczos(t *testing.T) {
	data := photoFixture()
	res := process(t, data, "image/jpeg", avatarOptions())
	lg := decodeEncoded(t, res.Variants[0])

	full, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	if err != nil {
		t.Fatal(err)
	}
	ref := imaging.Fill(full, 256, 256, imaging.Center, imaging.Lanczos)

	var refJPEG bytes.Buffer
	if err := jpeg.Encode(&refJPEG, ref, &jpeg.Options{Quality: variantJPEGQuality}); err != nil {
		t.Fatal(err)
	}
	refDecoded, err := jpeg.Decode(&refJPEG)
	if err != nil {
		t.Fatal(err)
	}

	delivered := psnr(lg, ref)
	t.Logf("PSNR of the delivered lg avatar vs imaging Lanczos from the full image: %.2f dB", delivered)
	t.Logf("PSNR of that reference itself after JPEG q%d (the encoding's ceiling): %.2f dB", variantJPEGQuality, psnr(refDecoded, ref))
	if delivered < 35 {
		t.Errorf("PSNR %.2f dB, want at least 35", delivered)
	}

	// The same before encoding, for every variant.
	up, err := decodeUpload(bytes.NewReader(data), jpegFormat(t), avatarOptions())
	if err != nil {
		t.Fatal(err)
	}
	master := makeMaster(up.pixels, up.orientation, 2048)
	for i, v := range makeVariants(master, avatarOptions().Variants) {
		side := v.width
		t.Logf("PSNR of the %d avatar's pixels before encoding: %.2f dB", side,
			psnr(v.image(), imaging.Fill(full, side, side, imaging.Center, imaging.Lanczos)))
		if i == 0 && psnr(v.image(), ref) < 35 {
			t.Errorf("lg before encoding under 35 dB")
		}
	}
	t.Logf("PSNR of the master's pixels before encoding vs imaging Lanczos Fit: %.2f dB",
		psnr(master.image(), imaging.Fit(full, 2048, 2048, imaging.Lanczos)))

	// The fixture must be demanding enough to fail a resize that aliases:
	// x/image/draw's ApproxBiLinear straight from the full image to 256.
	b := full.Bounds()
	crop := image.Rect(0, (b.Dy()-b.Dx())/2, b.Dx(), (b.Dy()+b.Dx())/2)
	aliased := image.NewRGBA(image.Rect(0, 0, 256, 256))
	draw.ApproxBiLinear.Scale(aliased, aliased.Rect, full, crop, draw.Src, nil)
	t.Logf("PSNR of ApproxBiLinear straight to 256, for comparison: %.2f dB", psnr(aliased, ref))
	if psnr(aliased, ref) >= 35 {
		t.Errorf("the fixture does not tell an aliasing resize from a good one")
	}
}

func jpegFormat(t testing.TB) imageFormat {
	f, ok := formatOf("image/jpeg")
	if !ok {
		t.Fatal("no jpeg format")
	}
	return f
}

// psnr is the peak signal-to-noise ratio over the 8-bit R, G and B
// channels of two images of the same size.
func psnr(a, b image.Image) float64 {
	ab, bb := a.Bounds(), b.Bounds()
	if ab.Size() != bb.Size() {
		return 0
	}
	var sum float64
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			for _, d := range []float64{
				float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8),
			} {
				sum += d * d
			}
		}
	}
	mse := sum / float64(3*ab.Dx()*ab.Dy())
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}
