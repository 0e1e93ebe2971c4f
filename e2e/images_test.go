package e2e

import (
	"bytes"
	binenc "encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// photoPNG is a w×h image, blue with a red square in the top-left corner.
func photoPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{0, 0, 200, 255}
			if x < w/8 && y < h/8 {
				c = color.RGBA{220, 0, 0, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombPNG is a small real PNG whose header claims w×h pixels.
func bombPNG(t *testing.T, w, h uint32) []byte {
	p := photoPNG(t, 16, 16)
	binenc.BigEndian.PutUint32(p[16:], w)
	binenc.BigEndian.PutUint32(p[20:], h)
	binenc.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

func TestImageSetsProcessPhotos(t *testing.T) {
	s := startServer(t, `
set "photos" {
  extensions = images
  image {
    max_width  = 400
    max_height = 400
    format     = "jpeg"
    max_pixels = 10000000
  }
  thumbnail "small" {
    width  = 100
    height = 100
  }
}`)
	data := photoPNG(t, 800, 600)
	_, last := upload(t, s.URL+"/uploads/photos/", "holiday.png", data, len(data))
	if got := last.Header.Get("Upload-File-Name"); got != "holiday.jpg" {
		t.Fatalf("Upload-File-Name %q, want holiday.jpg (the format changed, so did the extension)", got)
	}
	dest := s.Uploads("photos")
	f, err := os.Open(filepath.Join(dest, "holiday.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("the placed file is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 400 || b.Dy() != 300 {
		t.Errorf("placed %dx%d, want 400x300 (fitted inside 400x400)", b.Dx(), b.Dy())
	}
	if r, g, b, _ := img.At(10, 10).RGBA(); r>>8 < 150 || g>>8 > 80 || b>>8 > 80 {
		t.Errorf("the red corner is now %d,%d,%d", r>>8, g>>8, b>>8)
	}
	if got := files(t, dest); len(got) != 1 {
		t.Errorf("destination holds %v: the original must not be kept", got)
	}
	thumb := filepath.Join(dest, "thumbs", "small", "holiday.jpg")
	f, err = os.Open(thumb)
	if err != nil {
		t.Fatalf("no thumbnail: %v", err)
	}
	cfg, _, err := image.DecodeConfig(f)
	f.Close()
	if err != nil || cfg.Width > 100 || cfg.Height > 100 {
		t.Errorf("thumbnail %dx%d (%v), want inside 100x100", cfg.Width, cfg.Height, err)
	}
	res, _ := do(t, http.MethodGet, s.URL+"/files/photos/thumbs/small/holiday.jpg", nil, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("GET of the thumbnail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	_, body := do(t, http.MethodGet, s.URL+"/api/uploads/photos/"+uploadID(strings.TrimSuffix(last.Request.URL.String(), "/")), nil, nil)
	var st struct{ Thumbnails map[string]string }
	json.Unmarshal([]byte(body), &st)
	if st.Thumbnails["small"] != s.URL+"/files/photos/thumbs/small/holiday.jpg" {
		t.Errorf("status API thumbnails: %s", body)
	}

	for name, tc := range map[string]struct {
		file string
		data []byte
		code string
	}{
		"a header claiming 100000x100000":   {"bomb.png", bombPNG(t, 100_000, 100_000), "ERR_IMAGE_TOO_LARGE"},
		"a format the decoder is not given": {"old.bmp", append([]byte("BM"), make([]byte, 60)...), "ERR_NOT_AN_IMAGE"},
	} {
		t.Run(name, func(t *testing.T) {
			res, _ := create(t, s.URL+"/uploads/photos/", tc.file, int64(len(tc.data)))
			res, body := patch(t, res.Header.Get("Location"), 0, tc.data)
			if res.StatusCode != http.StatusUnprocessableEntity || !strings.HasPrefix(body, tc.code) || !strings.Contains(body, `set "photos"`) {
				t.Errorf("%d %q, want 422 %s naming the set", res.StatusCode, body, tc.code)
			}
			if _, err := os.Stat(filepath.Join(dest, tc.file)); err == nil {
				t.Error("placed anyway")
			}
		})
	}
}
