package imagery

import (
	"image"
	"image/draw"
)

// plane is a rectangle of interleaved 8-bit samples: a Y, Cb or Cr plane
// or a grey image (one channel), or premultiplied RGBA (four channels).
type plane struct {
	pix      []uint8
	width    int // samples per row, per channel
	height   int
	stride   int // bytes from one row to the next
	channels int
	// xDiv and yDiv are how many image pixels one sample spans: 2 and 2
	// for the chroma of 4:2:0, 1 and 1 for a full-resolution plane.
	xDiv, yDiv int
}

func newPlane(width, height, channels, xDiv, yDiv int) plane {
	return plane{
		pix:   make([]uint8, width*height*channels),
		width: width, height: height, stride: width * channels, channels: channels,
		xDiv: xDiv, yDiv: yDiv,
	}
}

// row returns the samples of row y.
func (p plane) row(y int) []uint8 {
	return p.pix[y*p.stride : y*p.stride+p.width*p.channels]
}

// pixelModel is how a raster's planes hold colour.
type pixelModel int

const (
	modelYCbCr pixelModel = iota + 1 // planes Y, Cb, Cr, as a JPEG decodes
	modelGray                        // one plane of one channel
	modelRGBA                        // one plane of premultiplied RGBA
)

// raster is an image as the pipeline works on it: planes of 8-bit samples
// that resampling and orientation treat alike, whatever the colour model.
// Photos stay YCbCr from the decoder to the encoder; only images that are
// neither YCbCr nor grey are converted, once, to premultiplied RGBA.
type raster struct {
	model         pixelModel
	width, height int
	planes        []plane
}

// rasterOf wraps a decoded image, without copying it when its layout
// allows. It may modify img (an NRGBA image is premultiplied in place).
func rasterOf(img image.Image) raster {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.YCbCr:
		if xDiv, yDiv, ok := chromaDivisors(m.SubsampleRatio); ok && b.Min == (image.Point{}) {
			cw, ch := (w+xDiv-1)/xDiv, (h+yDiv-1)/yDiv
			return raster{model: modelYCbCr, width: w, height: h, planes: []plane{
				{pix: m.Y, width: w, height: h, stride: m.YStride, channels: 1, xDiv: 1, yDiv: 1},
				{pix: m.Cb, width: cw, height: ch, stride: m.CStride, channels: 1, xDiv: xDiv, yDiv: yDiv},
				{pix: m.Cr, width: cw, height: ch, stride: m.CStride, channels: 1, xDiv: xDiv, yDiv: yDiv},
			}}
		}
	case *image.Gray:
		return singlePlane(modelGray, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], w, h, m.Stride, 1)
	case *image.RGBA:
		return singlePlane(modelRGBA, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], w, h, m.Stride, 4)
	case *image.NRGBA:
		premultiply(m)
		return singlePlane(modelRGBA, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], w, h, m.Stride, 4)
	}
	// Paletted (GIF, PNG-8), 16-bit PNG, CMYK JPEG, WebP with alpha...:
	// one conversion to premultiplied RGBA.
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	return singlePlane(modelRGBA, rgba.Pix, w, h, rgba.Stride, 4)
}

func singlePlane(model pixelModel, pix []uint8, w, h, stride, channels int) raster {
	return raster{model: model, width: w, height: h, planes: []plane{
		{pix: pix, width: w, height: h, stride: stride, channels: channels, xDiv: 1, yDiv: 1},
	}}
}

// chromaDivisors returns how many pixels one chroma sample spans across
// and down for a subsampling ratio.
func chromaDivisors(r image.YCbCrSubsampleRatio) (xDiv, yDiv int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 2, 1, true
	case image.YCbCrSubsampleRatio420:
		return 2, 2, true
	case image.YCbCrSubsampleRatio440:
		return 1, 2, true
	case image.YCbCrSubsampleRatio411:
		return 4, 1, true
	case image.YCbCrSubsampleRatio410:
		return 4, 2, true
	}
	return 0, 0, false
}

// subsampleRatio is the inverse of chromaDivisors.
func subsampleRatio(xDiv, yDiv int) (image.YCbCrSubsampleRatio, bool) {
	for _, r := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		if x, y, _ := chromaDivisors(r); x == xDiv && y == yDiv {
			return r, true
		}
	}
	return 0, false
}

// premultiply turns straight alpha into premultiplied alpha in place, so
// that the NRGBA image's pixels are read as an RGBA image's.
func premultiply(m *image.NRGBA) {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)]
		for i := 0; i+3 < len(row); i += 4 {
			a := uint32(row[i+3])
			if a == 0xFF {
				continue
			}
			row[i] = uint8((uint32(row[i])*a + 127) / 255)
			row[i+1] = uint8((uint32(row[i+1])*a + 127) / 255)
			row[i+2] = uint8((uint32(row[i+2])*a + 127) / 255)
		}
	}
}

// opaque reports whether every pixel is fully opaque. Only RGBA rasters can
// hold alpha; they are at most master-sized when this is asked.
func (r raster) opaque() bool {
	if r.model != modelRGBA {
		return true
	}
	p := r.planes[0]
	for y := range p.height {
		row := p.row(y)
		for i := 3; i < len(row); i += 4 {
			if row[i] != 0xFF {
				return false
			}
		}
	}
	return true
}

// image returns the raster as an image the standard encoders take on their
// fast paths (*image.YCbCr, *image.Gray, *image.RGBA), without copying.
func (r raster) image() image.Image {
	rect := image.Rect(0, 0, r.width, r.height)
	switch r.model {
	case modelYCbCr:
		y, cb, cr := r.planes[0], r.planes[1], r.planes[2]
		ratio, ok := subsampleRatio(cb.xDiv, cb.yDiv)
		if ok && cb.stride == cr.stride {
			return &image.YCbCr{Y: y.pix, Cb: cb.pix, Cr: cr.pix, YStride: y.stride, CStride: cb.stride, SubsampleRatio: ratio, Rect: rect}
		}
		panic("imagery: YCbCr raster with unmatched chroma planes") // resample and orient never make one
	case modelGray:
		return &image.Gray{Pix: r.planes[0].pix, Stride: r.planes[0].stride, Rect: rect}
	default:
		return &image.RGBA{Pix: r.planes[0].pix, Stride: r.planes[0].stride, Rect: rect}
	}
}

// nrgba returns a copy of an RGBA raster with straight alpha, which the PNG
// encoder writes without converting pixel by pixel.
func (r raster) nrgba() *image.NRGBA {
	p := r.planes[0]
	out := image.NewNRGBA(image.Rect(0, 0, r.width, r.height))
	for y := range p.height {
		src, dst := p.row(y), out.Pix[y*out.Stride:(y+1)*out.Stride]
		for i := 0; i+3 < len(src); i += 4 {
			a := uint32(src[i+3])
			dst[i+3] = uint8(a)
			if a == 0 || a == 0xFF {
				if a == 0xFF {
					copy(dst[i:i+3], src[i:i+3])
				}
				continue
			}
			dst[i] = uint8(min((uint32(src[i])*255+a/2)/a, 255))
			dst[i+1] = uint8(min((uint32(src[i+1])*255+a/2)/a, 255))
			dst[i+2] = uint8(min((uint32(src[i+2])*255+a/2)/a, 255))
		}
	}
	return out
}
