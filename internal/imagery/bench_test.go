package imagery

import (
	"bytes"
	"image"
	"image/jpeg"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/disintegration/imaging"
)

// The benchmarks run on photoFixture: a 12 MP (4032×3024) photo-like JPEG
// at quality 92 (about 3.4 MB) with EXIF orientation 6, generated once,
// outside the timers. Compare them side by side from one run:
//
//	go test -run xxx -bench . -count 6 ./internal/imagery/ | tee /tmp/imagery-bench.txt
//	benchstat /tmp/imagery-bench.txt
//
// Besides time and allocations, the pipeline benchmarks report:
//
//	peak-heap-MiB   the most heap the pipeline's objects occupied above what
//	                was in use before it started, sampled (see peakHeap);
//	peak/decoded    that peak over the size of the decoded image (the
//	                4:2:0 YCbCr planes image/jpeg returns, 17.5 MiB here).

// BenchmarkDecodeOnly is the floor: decoding the JPEG, nothing else.
func BenchmarkDecodeOnly(b *testing.B) {
	data := photoFixture()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNaive is the obvious way with imaging: decode with automatic
// orientation (which rotates the full image), then, for each avatar size,
// imaging.Fill with Lanczos from the full image, then encode. It makes no
// master, so it does less than BenchmarkAvatarPipeline.
func BenchmarkNaive(b *testing.B) { benchmarkNaive(b, false) }

// BenchmarkNaiveWithMaster adds to BenchmarkNaive the master the pipeline
// also makes (imaging.Fit to 2048 with Lanczos, encoded at quality 90), so
// both produce the same outputs.
func BenchmarkNaiveWithMaster(b *testing.B) { benchmarkNaive(b, true) }

func benchmarkNaive(b *testing.B, withMaster bool) {
	data := photoFixture()
	encode := func(img image.Image, quality int) {
		var out bytes.Buffer
		if err := jpeg.Encode(&out, img, &jpeg.Options{Quality: quality}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		img, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
		if err != nil {
			b.Fatal(err)
		}
		if withMaster {
			encode(imaging.Fit(img, 2048, 2048, imaging.Lanczos), masterJPEGQuality)
		}
		for _, side := range []int{256, 128, 64} {
			encode(imaging.Fill(img, side, side, imaging.Center, imaging.Lanczos), variantJPEGQuality)
		}
	}
}

// BenchmarkAvatarPipeline is Process with the avatar options: decode,
// master (1536×2048, oriented), Fill 256/128/64, all encoded.
func BenchmarkAvatarPipeline(b *testing.B) {
	benchmarkProcess(b, avatarOptions())
}

// BenchmarkLogoPipeline is Process with the logo options (Fit 512/128/64)
// on the same photo.
func BenchmarkLogoPipeline(b *testing.B) {
	benchmarkProcess(b, logoOptions())
}

func benchmarkProcess(b *testing.B, opts Options) {
	data := photoFixture()
	run := func() {
		if _, err := Process(bytes.NewReader(data), "image/jpeg", opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		run()
	}
	b.StopTimer()
	peak := peakHeap(run)
	const decoded = 4032*3024 + 2*2016*1512 // Y + Cb + Cr of the 4:2:0 decode
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak)/decoded, "peak/decoded")
}

// peakHeap runs fn once and returns the most heap memory occupied by
// objects (live or not yet swept) above the level before fn started. A
// goroutine samples runtime/metrics' /memory/classes/heap/objects:bytes
// every 50µs while fn runs; the garbage collector runs as usual, so this
// is what the process really holds at the upload's worst moment. A spike
// shorter than the sampling interval could be missed, but the heap only
// shrinks when a GC cycle ends, so a large allocation stays visible until
// then; B/op, which counts every allocation, bounds it from above.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	read := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := read()
	stop, result := make(chan struct{}), make(chan uint64)
	go func() {
		peak := base
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				result <- max(peak, read())
				return
			case <-time.After(50 * time.Microsecond):
			}
		}
	}()
	fn()
	close(stop)
	return <-result - base
}
