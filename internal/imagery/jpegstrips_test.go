package imagery

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"testing"
)

// TestStripEncodingDecodesLikeOneEncoding checks that a JPEG encoded in
// parallel strips decodes to exactly the pixels of image/jpeg's own
// single-strip encoding, for colour and grey, with sizes that do not fall
// on MCU boundaries.
func TestStripEncodingDecodesLikeOneEncoding(t *testing.T) {
	photo := photoLike(1283, 1031) // over parallelMinSamples, odd sizes
	gray := &image.Gray{Pix: photo.Y, Stride: photo.YStride, Rect: photo.Rect}
	for _, m := range []image.Image{photo, gray} {
		t.Run(fmt.Sprintf("%T", m), func(t *testing.T) {
			var strips, whole bytes.Buffer
			if err := encodeJPEG(&strips, m, 90); err != nil {
				t.Fatal(err)
			}
			if err := jpeg.Encode(&whole, m, &jpeg.Options{Quality: 90}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(strips.Bytes(), []byte{0xFF, markerDRI}) {
				t.Fatal("not encoded in strips")
			}
			a, err := jpeg.Decode(&strips)
			if err != nil {
				t.Fatal(err)
			}
			b, err := jpeg.Decode(&whole)
			if err != nil {
				t.Fatal(err)
			}
			if a.Bounds() != b.Bounds() {
				t.Fatalf("bounds %v, want %v", a.Bounds(), b.Bounds())
			}
			if d := meanAbsDiff(a, b); d != 0 {
				t.Errorf("strips decode %.3f per channel away from one encoding", d)
			}
		})
	}
}
