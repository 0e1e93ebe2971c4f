//go:build cgo

package images

// Images for the tests, made here: stdlib encoders for the pixels, metadata segments
// spliced in byte by byte, libvips for HEIC and the 12 MP photos.

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/hashicorp/go-hclog"
)

var (
	testProc     *Processor
	testProcErr  error
	testProcOnce sync.Once
)

// processor is the tests' Processor with two workers, as on a two-core machine.
func processor(t testing.TB) *Processor {
	t.Helper()
	testProcOnce.Do(func() {
		testProc, testProcErr = Start(2, hclog.New(&hclog.LoggerOptions{Name: "images", Level: hclog.Warn}))
	})
	if testProcErr != nil {
		t.Fatal(testProcErr)
	}
	return testProc
}

var (
	red  = color.RGBA{220, 20, 20, 255}
	blue = color.RGBA{20, 40, 200, 255}
)

// marked is a w × h blue image with a red square in its stored top-left corner.
func marked(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := blue
			if x < w/4 && y < h/4 {
				c = red
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func segment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

// exifOrientedWithGPS is an APP1 Exif payload: IFD0 with Orientation and a GPS IFD
// holding a latitude.
func exifOrientedWithGPS(orientation uint16) []byte {
	le := binary.LittleEndian
	t := make([]byte, 92)
	copy(t, "II*\x00")
	le.PutUint32(t[4:], 8)
	entry := func(at int, tag, typ uint16, count, value uint32) {
		le.PutUint16(t[at:], tag)
		le.PutUint16(t[at+2:], typ)
		le.PutUint32(t[at+4:], count)
		le.PutUint32(t[at+8:], value)
	}
	le.PutUint16(t[8:], 2)
	entry(10, 0x0112, 3, 1, uint32(orientation)) // Orientation, SHORT
	entry(22, 0x8825, 4, 1, 38)                  // GPSInfo IFD pointer, LONG
	le.PutUint16(t[38:], 2)
	entry(40, 0x0001, 2, 2, uint32('N'))                  // GPSLatitudeRef "N"
	entry(52, 0x0002, 5, 3, 68)                           // GPSLatitude, 3 RATIONALs at 68
	for i, v := range []uint32{48, 1, 51, 1, 2400, 100} { // 48° 51' 24"
		le.PutUint32(t[68+4*i:], v)
	}
	return append([]byte("Exif\x00\x00"), t...)
}

// phoneJPEG is a JPEG as phones write them: orientation 6, GPS, XMP, IPTC and a comment.
func phoneJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	plain := encodeJPEG(t, img)
	xmp := append([]byte("http://ns.adobe.com/xap/1.0/\x00"), `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="secret-xmp-creator"/></rdf:RDF></x:xmpmeta>`...)
	iptcData := append([]byte{0x1C, 0x02, 0x78, 0x00, 14}, "secret-caption"...)
	iptc := append([]byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00"), 0, 0, 0, byte(len(iptcData)))
	iptc = append(iptc, iptcData...)
	if len(iptcData)%2 == 1 {
		iptc = append(iptc, 0)
	}
	var b bytes.Buffer
	b.Write(plain[:2]) // SOI
	b.Write(segment(0xE1, exifOrientedWithGPS(6)))
	b.Write(segment(0xE1, xmp))
	b.Write(segment(0xED, iptc))
	b.Write(segment(0xFE, []byte("secret-comment")))
	b.Write(plain[2:])
	return b.Bytes()
}

// pngChunk is one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	copy(c[4:], typ)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// pngWithText is a PNG with tEXt, iTXt and eXIf chunks before its pixels.
func pngWithText(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	plain := b.Bytes()
	ihdrEnd := 8 + 12 + 13 // signature, IHDR
	var out bytes.Buffer
	out.Write(plain[:ihdrEnd])
	out.Write(pngChunk("tEXt", []byte("Comment\x00secret-png-comment")))
	out.Write(pngChunk("iTXt", []byte("Author\x00\x00\x00\x00\x00secret-png-author")))
	out.Write(pngChunk("eXIf", exifOrientedWithGPS(1)[6:]))
	out.Write(plain[ihdrEnd:])
	return out.Bytes()
}

// claimingJPEG is a small real JPEG whose frame header claims w × h.
func claimingJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	b := encodeJPEG(t, marked(16, 16))
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 in the stdlib's JPEG")
	}
	binary.BigEndian.PutUint16(b[i+5:], uint16(h))
	binary.BigEndian.PutUint16(b[i+7:], uint16(w))
	return b
}

// claimingPNG is a small real PNG whose IHDR claims w × h (with a valid CRC).
func claimingPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, marked(16, 16)); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	binary.BigEndian.PutUint32(p[16:], uint32(w))
	binary.BigEndian.PutUint32(p[20:], uint32(h))
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// photo is a w × h libvips image that compresses like a phone's photo (about 3.5 MB
// at 12 MP and quality 92): colour gradients with detail at a sixth of the resolution,
// smoothed by the upscale. Entropy decoding dominates a JPEG's decode, so a fixture
// of pure noise (7.5 MB) would measure a much heavier file than phones send.
func photo(t testing.TB, w, h int) *vips.ImageRef {
	t.Helper()
	processor(t) // libvips started
	const scale = 6
	sw, sh := w/scale, h/scale
	small := image.NewRGBA(image.Rect(0, 0, sw, sh))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range sh {
		for x := range sw {
			i := small.PixOffset(x, y)
			base := [3]int{40 + 150*x/sw, 60 + 120*y/sh, 200 - 150*(x+y)/(sw+sh)}
			for c := range 3 {
				small.Pix[i+c] = uint8(min(255, max(0, base[c]+r.IntN(48)-24)))
			}
			small.Pix[i+3] = 255
		}
	}
	img, err := vips.NewImageFromGoImage(small)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.ExtractBand(0, 3); err != nil {
		t.Fatal(err)
	}
	if err := img.ResizeWithVScale(float64(w)/float64(sw), float64(h)/float64(sh), vips.KernelLanczos3); err != nil {
		t.Fatal(err)
	}
	return img
}

// photoFile writes photo(w, h) as a JPEG (format "jpeg") or HEIC ("heic") in dir.
func photoFile(t testing.TB, dir string, w, h int, format string) string {
	t.Helper()
	img := photo(t, w, h)
	defer img.Close()
	var buf []byte
	var err error
	switch format {
	case "jpeg":
		buf, _, err = img.ExportJpeg(&vips.JpegExportParams{Quality: 92})
	case "heic":
		p := vips.NewHeifExportParams()
		p.Quality = 80
		p.Effort = 0 // fastest x265 preset: the fixture's quality is not under test
		buf, _, err = img.ExportHeif(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "photo."+format, buf)
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jpegMarkers lists the markers of a JPEG up to its scan data.
func jpegMarkers(t testing.TB, b []byte) []byte {
	t.Helper()
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		t.Fatal("not a JPEG")
	}
	var markers []byte
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		m := b[i+1]
		markers = append(markers, m)
		if m == 0xDA { // SOS: entropy-coded data follows
			return markers
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	t.Fatal("no SOS")
	return nil
}

// pngChunks lists the chunk types of a PNG.
func pngChunks(t testing.TB, b []byte) []string {
	t.Helper()
	var types []string
	for i := 8; i+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		types = append(types, string(b[i+4:i+8]))
		i += 12 + n
	}
	return types
}
