package e2e

import (
	"bytes"
	"encoding/base64"
	binenc "encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"os/exec"
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

// withOrientation inserts an EXIF APP1 segment with orientation o (and a GPS position,
// which must not survive) after a JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16) []byte {
	le := binenc.LittleEndian
	tiff := []byte("II*\x00\x08\x00\x00\x00")
	tiff = le.AppendUint16(tiff, 2) // IFD0: orientation, GPS IFD pointer
	tiff = le.AppendUint16(tiff, 0x0112)
	tiff = le.AppendUint16(tiff, 3)
	tiff = le.AppendUint32(tiff, 1)
	tiff = le.AppendUint16(tiff, o)
	tiff = le.AppendUint16(tiff, 0)
	tiff = le.AppendUint16(tiff, 0x8825)
	tiff = le.AppendUint16(tiff, 4)
	tiff = le.AppendUint32(tiff, 1)
	tiff = le.AppendUint32(tiff, uint32(len(tiff)+4+4)) // right after the next-IFD offset
	tiff = le.AppendUint32(tiff, 0)
	tiff = le.AppendUint16(tiff, 1) // GPS IFD: latitude ref "N"
	tiff = le.AppendUint16(tiff, 0x0001)
	tiff = le.AppendUint16(tiff, 2)
	tiff = le.AppendUint32(tiff, 2)
	tiff = append(tiff, 'N', 0, 0, 0)
	tiff = le.AppendUint32(tiff, 0)
	app1 := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binenc.BigEndian.AppendUint16(seg, uint16(len(app1)+2))
	seg = append(seg, app1...)
	return append(append(append([]byte{}, jpg[:2]...), seg...), jpg[2:]...)
}

// markers lists a JPEG's segment markers up to the image data.
func markers(jpg []byte) []byte {
	var out []byte
	for i := 2; i+4 <= len(jpg) && jpg[i] == 0xFF; {
		m := jpg[i+1]
		out = append(out, m)
		if m == 0xDA {
			break
		}
		i += 2 + int(binenc.BigEndian.Uint16(jpg[i+2:]))
	}
	return out
}

// Phones: a JPEG stored sideways with EXIF orientation 6 and a GPS position, and an
// iPhone's HEIC, through the binary.
func TestImageSetsTakePhonePhotos(t *testing.T) {
	s := startServer(t, `
set "phone" {
  extensions = concat(images, ["heic"])
  image {
    max_width  = 400
    max_height = 400
    format     = "jpeg"
  }
}`)
	dest := s.Uploads("phone")
	img, err := png.Decode(bytes.NewReader(photoPNG(t, 800, 600)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	sideways := withOrientation(b.Bytes(), 6)
	_, last := upload(t, s.URL+"/uploads/phone/", "IMG_0042.jpg", sideways, len(sideways))
	if got := last.Header.Get("Upload-File-Name"); got != "IMG_0042.jpg" {
		t.Fatalf("Upload-File-Name %q", got)
	}
	out, err := os.ReadFile(filepath.Join(dest, "IMG_0042.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markers(out) {
		if m >= 0xE1 && m <= 0xEF || m == 0xFE {
			t.Errorf("the placed JPEG keeps metadata segment 0x%X (EXIF, XMP, IPTC or a comment)", m)
		}
	}
	if bytes.Contains(out, []byte("Exif")) {
		t.Error("EXIF (with the GPS position) survived")
	}
	rotated, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	bd := rotated.Bounds()
	if bd.Dx() != 300 || bd.Dy() != 400 {
		t.Fatalf("placed %dx%d, want 300x400: turned upright, then fitted", bd.Dx(), bd.Dy())
	}
	// Stored top-left, the red corner is top-right once turned 90° clockwise.
	if r, _, bl, _ := rotated.At(bd.Dx()-10, 10).RGBA(); r>>8 < 150 || bl>>8 > 80 {
		t.Errorf("the top-right corner is %d,_,%d: the image was not turned upright", r>>8, bl>>8)
	}

	if _, err := exec.LookPath("vips"); err != nil {
		t.Fatal("the vips command (libvips-tools) is missing: run make deps")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.png"), photoPNG(t, 640, 480), 0o644)
	if out, err := exec.Command("vips", "copy", filepath.Join(dir, "in.png"), filepath.Join(dir, "in.heic")).CombinedOutput(); err != nil {
		t.Fatalf("making a HEIC: %v %s", err, out)
	}
	heic, _ := os.ReadFile(filepath.Join(dir, "in.heic"))
	_, last = upload(t, s.URL+"/uploads/phone/", "IMG_0001.HEIC", heic, len(heic))
	if got := last.Header.Get("Upload-File-Name"); got != "IMG_0001.jpg" {
		t.Fatalf("a HEIC placed as %q, want IMG_0001.jpg", got)
	}
	f, err := os.Open(filepath.Join(dest, "IMG_0001.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c, err := jpeg.DecodeConfig(f); err != nil || c.Width != 400 || c.Height != 300 {
		t.Errorf("the HEIC became %dx%d (%v), want a 400x300 JPEG", c.Width, c.Height, err)
	}
}

// The app learns of a processed photo's final name, type and thumbnails.
func TestPlacedImageEventHasThumbnails(t *testing.T) {
	rc := newReceiver(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notify.key"), []byte("whsec_"+base64.StdEncoding.EncodeToString([]byte("thirty-two bytes of webhook key!"))), 0o600)
	s := startServerIn(t, dir, baseConfig+`
notify "app" {
  url         = "`+rc.URL+`"
  secret_file = "./notify.key"
  events      = ["upload.placed"]
}
set "photos" {
  extensions = ["png", "jpg"]
  image {
    format = "jpeg"
  }
  thumbnail "small" {
    width  = 64
    height = 64
    fit    = "cover"
  }
}`)
	data := photoPNG(t, 300, 200)
	url, _ := upload(t, s.URL+"/uploads/photos/", "beach.png", data, len(data))
	d := rc.wait(t, "upload.placed "+uploadID(url))["upload.placed "+uploadID(url)].event.Data
	thumbs, _ := d["thumbnails"].(map[string]any)
	if d["name"] != "beach.jpg" || d["type"] != "image/jpeg" || d["url"] != s.URL+"/files/photos/beach.jpg" ||
		thumbs["small"] != s.URL+"/files/photos/thumbs/small/beach.jpg" {
		t.Errorf("upload.placed data: %v", d)
	}
	f, err := os.Open(filepath.Join(s.Uploads("photos"), "thumbs", "small", "beach.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c, err := jpeg.DecodeConfig(f); err != nil || c.Width != 64 || c.Height != 64 {
		t.Errorf("a cover thumbnail of 64x64 is %dx%d (%v)", c.Width, c.Height, err)
	}
}

// A static build (CGO_ENABLED=0) has no libvips: it serves every set but the ones that
// process images, and says so when a config has one.
func TestStaticBuildRefusesOnlyImageSets(t *testing.T) {
	static := filepath.Join(t.TempDir(), "uploadsets-static")
	build := exec.Command("go", "build", "-o", static, "../cmd/uploadsets")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v %s", err, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(baseConfig+`
set "photos" {
  extensions = ["jpg"]
  image {
    format = "jpeg"
  }
}`), 0o644)
	cmd := exec.Command(static, "serve", "-config", "config.hcl")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `set \"photos\": image processing: image processing needs libvips`) {
		t.Errorf("a static build with an image set: %v\n%s", err, out)
	}
	check := exec.Command(static, "check", "-config", "config.hcl")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("check with a static build: %v %s", err, out)
	}
}
