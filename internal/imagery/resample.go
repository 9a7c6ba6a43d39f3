package imagery

import (
	"math"
	"runtime"
	"slices"
	"sync"
)

// Resampling is separable: each output row is the weighted sum of a few
// source rows, filtered horizontally. Weights are fixed-point integers and
// the filter widens with the reduction factor, so downscaling averages
// every source pixel instead of skipping some (which is what aliases).
// Each output row is made from its source rows in one go, so resampling
// needs memory for a few rows only, never an intermediate image.

// weightBits is the fixed-point precision of the filter weights.
const (
	weightBits = 14
	weightOne  = 1 << weightBits
)

// kernel is a resampling filter.
type kernel int

const (
	// triangle (bilinear) is the cheapest filter that still averages every
	// pixel when reducing; it is slightly soft.
	triangle kernel = iota + 1
	// catmullRom is a sharp cubic, close to Lanczos at two thirds of its cost.
	catmullRom
)

// support is the kernel's radius, in source pixels at scale 1.
func (k kernel) support() float64 {
	if k == triangle {
		return 1
	}
	return 2
}

// at is the kernel's weight at distance x.
func (k kernel) at(x float64) float64 {
	x = math.Abs(x)
	switch {
	case k == triangle:
		return max(0, 1-x)
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

// window is a rectangle in some image's pixel coordinates. It is
// fractional so that crops and chroma planes map exactly.
type window struct{ x, y, w, h float64 }

// axisMap maps an output index d along one axis to the source coordinate of
// its centre, offset + (d+0.5)*scale. Source sample i has its centre at i+0.5.
type axisMap struct{ offset, scale float64 }

// axisWeights are the filter taps for every output index along one axis:
// output d is the sum over t < taps of source[start[d]+t] * weights[d*taps+t].
type axisWeights struct {
	taps    int
	start   []int
	weights []int32 // each output's weights add up to weightOne
}

func newAxisWeights(k kernel, m axisMap, dstLen, srcLen int) axisWeights {
	stretch := max(m.scale, 1) // widen the filter when reducing
	radius := k.support() * stretch
	// Output d draws on the source samples whose centres lie within radius
	// of its own: first[d] to last[d]. taps is the widest such span.
	aw := axisWeights{start: make([]int, dstLen)}
	centres := make([]float64, dstLen)
	for d := range dstLen {
		centres[d] = m.offset + (float64(d)+0.5)*m.scale
		first := int(math.Floor(centres[d]-radius-0.5)) + 1
		last := int(math.Ceil(centres[d]+radius-0.5)) - 1
		aw.start[d] = first
		aw.taps = max(aw.taps, last-first+1)
	}
	aw.taps = max(1, min(aw.taps, srcLen))
	taps := aw.taps
	aw.weights = make([]int32, dstLen*taps)
	f := make([]float64, taps)
	for d, centre := range centres {
		start := max(0, min(aw.start[d], srcLen-taps)) // near an edge, drop what lies outside
		sum := 0.0
		for t := range f {
			f[t] = k.at((float64(start+t) + 0.5 - centre) / stretch)
			sum += f[t]
		}
		if sum <= 0 { // centre far outside the source: take the nearest sample
			clear(f)
			f[max(0, min(int(centre)-start, taps-1))], sum = 1, 1
		}
		w := aw.weights[d*taps : (d+1)*taps]
		total, largest := int32(0), 0
		for t := range w {
			w[t] = int32(math.Round(f[t] / sum * weightOne))
			total += w[t]
			if w[t] > w[largest] {
				largest = t
			}
		}
		w[largest] += weightOne - total // so that a flat area stays exactly flat
		aw.start[d] = start
	}
	return aw
}

// resamplePlane resamples src to an upright w×h plane whose sample (x, y)
// is filtered around source coordinates (xm, ym) of it, and stores each
// sample where place puts it in dst (which orients the result for free).
// Both planes have the same channels. Large planes are split into bands of
// rows resampled in parallel.
func resamplePlane(dst plane, place placement, w, h int, src plane, xm, ym axisMap, k kernel) {
	xw := newAxisWeights(k, xm, w, src.width)
	yw := newAxisWeights(k, ym, h, src.height)
	bands := 1
	if src.width*src.height >= parallelMinSamples {
		bands = min(runtime.GOMAXPROCS(0), maxParallelBands, h)
	}
	if bands == 1 {
		resampleRows(dst, place, 0, h, src, xw, yw)
		return
	}
	var wg sync.WaitGroup
	for b := range bands {
		wg.Go(func() { resampleRows(dst, place, h*b/bands, h*(b+1)/bands, src, xw, yw) })
	}
	wg.Wait()
}

// Parallel resampling: planes of at least parallelMinSamples source
// samples (a 1 MP image's luma) are split into up to maxParallelBands
// bands, one goroutine each.
const (
	parallelMinSamples = 1 << 20
	maxParallelBands   = 4
)

// resampleRows makes output rows y0 to y1: for each, the source rows are
// first summed vertically (contiguous, cheap loops over the source columns
// the row needs), then the result is filtered horizontally down to w.
func resampleRows(dst plane, place placement, y0, y1 int, src plane, xw, yw axisWeights) {
	c := src.channels
	// Source columns the horizontal filter reads, and its taps relative to them.
	first, last := xw.start[0], xw.start[len(xw.start)-1]+xw.taps
	xw.start = slices.Clone(xw.start)
	for d := range xw.start {
		xw.start[d] -= first
	}
	acc := make([]int32, (last-first)*c)
	out := make([]uint8, len(xw.start)*c)
	for y := y0; y < y1; y++ {
		clear(acc)
		for t, wt := range yw.weights[y*yw.taps : (y+1)*yw.taps] {
			if wt == 0 {
				continue
			}
			row := src.row(yw.start[y] + t)[first*c : last*c]
			row = row[:len(acc)]
			for x, v := range row {
				acc[x] += int32(v) * wt
			}
		}
		filterRow(out, acc, xw, c)
		place.row(dst.pix, y, out, c)
	}
}

// filterRow filters one vertically filtered row (fixed-point sums, so
// 2·weightBits fractional bits come out) horizontally.
func filterRow(dst []uint8, src []int32, xw axisWeights, channels int) {
	taps := xw.taps
	if channels == 1 {
		dst = dst[:len(xw.start)]
		for d, start := range xw.start {
			s := src[start : start+taps]
			w := xw.weights[d*taps : (d+1)*taps]
			s = s[:len(w)]
			var sum int64
			for t, wt := range w {
				sum += int64(s[t]) * int64(wt)
			}
			dst[d] = clampSample2(sum)
		}
		return
	}
	var sums [4]int64
	for d, start := range xw.start {
		s := src[start*channels : (start+taps)*channels]
		w := xw.weights[d*taps : (d+1)*taps]
		sum := sums[:channels]
		clear(sum)
		for t, wt := range w {
			px := s[t*channels : (t+1)*channels]
			for c := range sum {
				sum[c] += int64(px[c]) * int64(wt)
			}
		}
		out := dst[d*channels : (d+1)*channels]
		for c := range sum {
			out[c] = clampSample2(sum[c])
		}
	}
}

// clampSample2 rounds a sum of two filter passes to a sample.
func clampSample2(v int64) uint8 {
	v = (v + 1<<(2*weightBits-1)) >> (2 * weightBits)
	return uint8(max(0, min(v, 255)))
}

// resize resamples the part win of r (in r's pixels) to w×h pixels, then
// orients the result as o says (the output is h×w when o swaps axes).
// YCbCr comes out 4:2:0, the subsampling image/jpeg writes, whatever the
// source's; RGBA stays premultiplied.
func (r raster) resize(win window, w, h int, k kernel, o orientation) raster {
	out := raster{model: r.model, width: w, height: h, planes: make([]plane, len(r.planes))}
	if o.swapsAxes() {
		out.width, out.height = h, w
	}
	scaleX, scaleY := win.w/float64(w), win.h/float64(h)
	for i, src := range r.planes {
		xDiv, yDiv := 1, 1
		if i > 0 { // chroma
			xDiv, yDiv = 2, 2
		}
		pw, ph := (w+xDiv-1)/xDiv, (h+yDiv-1)/yDiv
		dst, place := orientedPlane(pw, ph, src.channels, xDiv, yDiv, o)
		// A dst sample's centre, in dst pixels, is (d+0.5)*div; in source
		// pixels that is win.x + (d+0.5)*div*scale; in source samples,
		// divide by the source's div.
		xm := axisMap{offset: win.x / float64(src.xDiv), scale: scaleX * float64(xDiv) / float64(src.xDiv)}
		ym := axisMap{offset: win.y / float64(src.yDiv), scale: scaleY * float64(yDiv) / float64(src.yDiv)}
		resamplePlane(dst, place, pw, ph, src, xm, ym, k)
		out.planes[i] = dst
	}
	if r.model == modelRGBA {
		clampToAlpha(out.planes[0])
	}
	return out
}

// clampToAlpha keeps premultiplied colour at or below alpha, which a sharp
// filter's overshoot can break near edges.
func clampToAlpha(p plane) {
	for y := range p.height {
		row := p.row(y)
		for i := 0; i+3 < len(row); i += 4 {
			a := row[i+3]
			row[i], row[i+1], row[i+2] = min(row[i], a), min(row[i+1], a), min(row[i+2], a)
		}
	}
}
