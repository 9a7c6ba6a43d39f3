package imagery

import (
	"bytes"
	"fmt"
	"image/png"
)

// encodeRaster encodes r as JPEG at the given quality when opaque, else as
// PNG. The encoders write pixels only: no metadata of the upload survives.
func encodeRaster(name string, r raster, opaque bool, quality int) (Encoded, error) {
	e := Encoded{Name: name, Width: r.width, Height: r.height}
	var buf bytes.Buffer
	var err error
	if opaque {
		buf.Grow(r.width * r.height / 4) // photos at these qualities take 1 to 3 bits per pixel
		e.ContentType, e.Ext = "image/jpeg", "jpg"
		err = encodeJPEG(&buf, r.image(), quality)
	} else {
		buf.Grow(r.width * r.height)
		e.ContentType, e.Ext = "image/png", "png"
		err = png.Encode(&buf, r.nrgba())
	}
	if err != nil {
		return Encoded{}, fmt.Errorf("imagery: encoding %s as %s: %w", name, e.Ext, err)
	}
	e.Data = buf.Bytes()
	return e, nil
}
