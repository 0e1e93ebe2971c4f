package images

import (
	"bytes"
	"encoding/binary"
)

// kind is a source format of the allow-list. The numbers are those of
// uploadsets_header in vips.go.
type kind int

const (
	unknown kind = iota
	kindJPEG
	kindPNG
	kindWebP
	kindGIF
	kindHEIF
)

func (k kind) String() string {
	return [...]string{"unknown", "JPEG", "PNG", "WebP", "GIF", "HEIF"}[k]
}

// sniffLen is how much of a file sniff needs: enough for an ftyp box with a few
// compatible brands.
const sniffLen = 64

// heifBrands are the ftyp brands of HEIC/HEIF stills and sequences. AVIF shares the
// container (and libheif would decode it) but is not on the allow-list, so "mif1" and
// "msf1", which both use, count only with an HEVC brand beside them.
var heifBrands = map[string]bool{"heic": true, "heix": true, "heim": true, "heis": true, "hevc": true, "hevx": true, "hevm": true, "hevs": true}

// sniff names the format from the file's first bytes, by signature only: the name and
// the client's type are hints, and libvips must never be the one to decide, since its
// own sniffing would happily pick its SVG or PDF loader.
func sniff(b []byte) kind {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return kindJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return kindPNG
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return kindWebP
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return kindGIF
	case isHEIF(b):
		return kindHEIF
	}
	return unknown
}

func isHEIF(b []byte) bool {
	if len(b) < 16 || string(b[4:8]) != "ftyp" {
		return false
	}
	size := int(binary.BigEndian.Uint32(b[:4]))
	if size < 16 || size%4 != 0 {
		return false
	}
	major := string(b[8:12])
	if heifBrands[major] {
		return true
	}
	if major != "mif1" && major != "msf1" {
		return false
	}
	end := min(size, len(b))
	for i := 16; i+4 <= end; i += 4 {
		if heifBrands[string(b[i:i+4])] {
			return true
		}
	}
	return false
}
