package imagery

import "encoding/binary"

// orientation is an EXIF Orientation value (TIFF tag 0x0112): how the
// stored pixels must be transformed to be shown upright.
//
//	1 upright             5 transpose (mirror across the main diagonal)
//	2 mirror horizontally 6 rotate 90° clockwise
//	3 rotate 180°         7 transverse (mirror across the anti-diagonal)
//	4 mirror vertically   8 rotate 90° counter-clockwise
type orientation int

const upright orientation = 1

// swapsAxes says whether the transform exchanges width and height.
func (o orientation) swapsAxes() bool { return o >= 5 && o <= 8 }

// maxEXIFBytes caps how much of an APP1 segment is examined. A segment's
// 16-bit length already bounds it to 64 KiB; the cap keeps that explicit.
const maxEXIFBytes = 64 << 10

// exifPrefix opens the APP1 segment that holds EXIF data.
const exifPrefix = "Exif\x00\x00"

// JPEG markers the segment walk needs.
const (
	markerSOI  = 0xD8 // start of image
	markerEOI  = 0xD9 // end of image
	markerSOS  = 0xDA // start of scan: entropy-coded data follows
	markerAPP1 = 0xE1 // EXIF and XMP
	markerTEM  = 0x01
	markerRST0 = 0xD0
	markerRST7 = 0xD7
)

// jpegOrientation returns the EXIF orientation stated in the leading bytes
// of a JPEG, or upright when there is none or the bytes make no sense. It
// walks the marker segments up to the first scan and never reads outside
// head, so any input is safe.
func jpegOrientation(head []byte) orientation {
	if len(head) < 2 || head[0] != 0xFF || head[1] != markerSOI {
		return upright
	}
	p := 2
	for p+4 <= len(head) {
		if head[p] != 0xFF {
			return upright // not at a marker: the segment lengths lied
		}
		marker := head[p+1]
		if marker == 0xFF { // fill byte before a marker
			p++
			continue
		}
		p += 2
		switch {
		case marker == markerSOS || marker == markerEOI:
			return upright
		case marker == markerSOI || marker == markerTEM || (marker >= markerRST0 && marker <= markerRST7):
			continue // markers without a length
		}
		length := int(binary.BigEndian.Uint16(head[p:]))
		if length < 2 {
			return upright
		}
		segment := head[p+2 : min(p+length, len(head))]
		if marker == markerAPP1 && len(segment) >= len(exifPrefix) && string(segment[:len(exifPrefix)]) == exifPrefix {
			tiff := segment[len(exifPrefix):]
			if o, ok := tiffOrientation(tiff[:min(len(tiff), maxEXIFBytes)]); ok {
				return o
			}
		}
		p += length
	}
	return upright
}

// tiffOrientation reads the Orientation tag from IFD0 of a TIFF structure
// (the body of an EXIF segment), in either byte order.
func tiffOrientation(tiff []byte) (orientation, bool) {
	const (
		tagOrientation = 0x0112
		typeShort      = 3
		typeLong       = 4
		entrySize      = 12
	)
	if len(tiff) < 8 {
		return upright, false
	}
	var order binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return upright, false
	}
	if order.Uint16(tiff[2:]) != 42 {
		return upright, false
	}
	ifd := uint64(order.Uint32(tiff[4:]))
	if ifd+2 > uint64(len(tiff)) {
		return upright, false
	}
	count := int(order.Uint16(tiff[ifd:]))
	entries := tiff[ifd+2:]
	for i := 0; i < count && (i+1)*entrySize <= len(entries); i++ {
		e := entries[i*entrySize : (i+1)*entrySize]
		if order.Uint16(e) != tagOrientation {
			continue
		}
		if order.Uint32(e[4:]) != 1 {
			return upright, false
		}
		var v uint32
		switch order.Uint16(e[2:]) {
		case typeShort:
			v = uint32(order.Uint16(e[8:]))
		case typeLong: // not what the standard says, but seen in the wild
			v = order.Uint32(e[8:])
		default:
			return upright, false
		}
		if v < 1 || v > 8 {
			return upright, false
		}
		return orientation(v), true
	}
	return upright, false
}
