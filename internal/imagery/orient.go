package imagery

// Orientation is applied while the master is written out by the resampler
// (see resize): each output sample is stored straight at its oriented
// place, so orienting costs neither a pass over the full image nor a copy
// of the master.

// placement says where sample (x, y) of a plane computed upright goes in
// the oriented plane: at origin + x*stepX + y*stepY in its pixels.
type placement struct{ origin, stepX, stepY int }

// orientedPlane allocates the plane that a w×h plane becomes when oriented
// by o, and the placement of the upright plane's samples in it. Sample
// (x, y) of the upright plane lands at (X, Y):
//
//	1: (x, y)          5: (y, x)
//	2: (w-1-x, y)      6: (h-1-y, x)
//	3: (w-1-x, h-1-y)  7: (h-1-y, w-1-x)
//	4: (x, h-1-y)      8: (y, w-1-x)
func orientedPlane(w, h, channels, xDiv, yDiv int, o orientation) (plane, placement) {
	if o.swapsAxes() {
		p := newPlane(h, w, channels, yDiv, xDiv)
		s, c := p.stride, channels
		switch o {
		case 5:
			return p, placement{0, s, c}
		case 6:
			return p, placement{(h - 1) * c, s, -c}
		case 7:
			return p, placement{(w-1)*s + (h-1)*c, -s, -c}
		default: // 8
			return p, placement{(w - 1) * s, -s, c}
		}
	}
	p := newPlane(w, h, channels, xDiv, yDiv)
	s, c := p.stride, channels
	switch o {
	case 2:
		return p, placement{(w - 1) * c, -c, s}
	case 3:
		return p, placement{(h-1)*s + (w-1)*c, -c, -s}
	case 4:
		return p, placement{(h - 1) * s, c, -s}
	default: // 1
		return p, placement{0, c, s}
	}
}

// row stores upright row y (samples of channels bytes) at its place in pix.
func (p placement) row(pix []uint8, y int, samples []uint8, channels int) {
	at := p.origin + y*p.stepY
	if p.stepX == channels { // upright rows stay rows
		copy(pix[at:at+len(samples)], samples)
		return
	}
	if channels == 1 {
		for _, v := range samples {
			pix[at] = v
			at += p.stepX
		}
		return
	}
	for x := 0; x < len(samples); x += channels {
		copy(pix[at:at+channels], samples[x:x+channels])
		at += p.stepX
	}
}
