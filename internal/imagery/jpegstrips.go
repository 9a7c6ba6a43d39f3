package imagery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"runtime"
	"sync"
)

// encodeJPEG encodes m (an *image.YCbCr, *image.RGBA or *image.Gray from
// raster.image) as a baseline JPEG into buf.
//
// image/jpeg encodes on one core, and a 3 MP master takes it about 70 ms.
// A large image is therefore cut into horizontal strips, whole MCU rows
// each, that image/jpeg encodes in parallel; their scans are then joined
// into one JPEG with restart markers between them. A restart marker resets
// the decoder's DC predictions and bit buffer, which is exactly the state
// a fresh encoder starts each strip in, so the joined file decodes to the
// same pixels as a single encoding. Every strip is encoded with the same
// quality, hence the same tables, and all but the last have the same
// number of MCUs, which the DRI segment declares.
func encodeJPEG(buf *bytes.Buffer, m image.Image, quality int) error {
	opts := &jpeg.Options{Quality: quality}
	b := m.Bounds()
	mcu := 16 // 4:2:0 colour
	if _, gray := m.(*image.Gray); gray {
		mcu = 8
	}
	mcuCols, mcuRows := (b.Dx()+mcu-1)/mcu, (b.Dy()+mcu-1)/mcu
	strips := 1
	if b.Dx()*b.Dy() >= parallelMinSamples {
		strips = min(runtime.GOMAXPROCS(0), maxParallelBands, mcuRows)
	}
	rowsPerStrip := (mcuRows + strips - 1) / strips
	sub, ok := m.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if strips <= 1 || !ok || mcuCols*rowsPerStrip > 0xFFFF {
		return jpeg.Encode(buf, m, opts)
	}
	strips = (mcuRows + rowsPerStrip - 1) / rowsPerStrip

	parts := make([]bytes.Buffer, strips)
	errs := make([]error, strips)
	var wg sync.WaitGroup
	for i := range strips {
		r := image.Rect(b.Min.X, b.Min.Y+i*rowsPerStrip*mcu, b.Max.X, min(b.Max.Y, b.Min.Y+(i+1)*rowsPerStrip*mcu))
		parts[i].Grow(buf.Available() / strips)
		wg.Go(func() { errs[i] = jpeg.Encode(&parts[i], sub.SubImage(r), opts) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	var scans [][]byte
	var headers, sos []byte
	for i := range parts {
		h, s, scan, err := splitJPEG(parts[i].Bytes())
		if err != nil {
			return err
		}
		if i == 0 {
			headers, sos = h, s
		}
		scans = append(scans, scan)
	}
	if err := setFrameHeight(headers, b.Dy()); err != nil {
		return err
	}
	buf.Write([]byte{0xFF, markerSOI})
	buf.Write(headers)
	buf.Write([]byte{0xFF, markerDRI, 0, 4, byte(mcuCols * rowsPerStrip >> 8), byte(mcuCols * rowsPerStrip)})
	buf.Write(sos)
	for i, scan := range scans {
		if i > 0 {
			buf.Write([]byte{0xFF, markerRST0 + byte((i-1)%8)})
		}
		buf.Write(scan)
	}
	buf.Write([]byte{0xFF, markerEOI})
	return nil
}

// Markers of the JPEG a strip encoder writes: SOI, DQT, SOF0, DHT, SOS,
// scan, EOI; and the restart interval that joining adds.
const (
	markerSOF0 = 0xC0
	markerDRI  = 0xDD
)

var errUnexpectedJPEG = errors.New("imagery: image/jpeg wrote an unexpected stream")

// splitJPEG cuts a JPEG written by image/jpeg into its table and frame
// segments (between SOI and SOS), its SOS segment, and its scan data
// (between SOS and EOI).
func splitJPEG(data []byte) (headers, sos, scan []byte, err error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != markerSOI || data[len(data)-2] != 0xFF || data[len(data)-1] != markerEOI {
		return nil, nil, nil, errUnexpectedJPEG
	}
	for p := 2; p+4 <= len(data) && data[p] == 0xFF; {
		end := p + 2 + int(binary.BigEndian.Uint16(data[p+2:]))
		if end > len(data)-2 {
			break
		}
		if data[p+1] == markerSOS {
			return data[2:p], data[p:end], data[end : len(data)-2], nil
		}
		p = end
	}
	return nil, nil, nil, errUnexpectedJPEG
}

// setFrameHeight rewrites the height in the SOF0 segment among headers.
func setFrameHeight(headers []byte, height int) error {
	for p := 0; p+4 <= len(headers) && headers[p] == 0xFF; p += 2 + int(binary.BigEndian.Uint16(headers[p+2:])) {
		if headers[p+1] == markerSOF0 && p+7 <= len(headers) {
			binary.BigEndian.PutUint16(headers[p+5:], uint16(height))
			return nil
		}
	}
	return errUnexpectedJPEG
}
