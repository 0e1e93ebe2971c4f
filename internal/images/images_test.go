//go:build cgo

package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/uploadsets/uploadsets/sets"
)

func defaultSpec() Spec {
	spec, _ := SpecFor(&sets.Set{Image: new(sets.DefaultImage())})
	return spec
}

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r>>8 > 150 && g>>8 < 90 && b>>8 < 90
}

func isBlue(c color.Color) bool {
	r, _, b, _ := c.RGBA()
	return b>>8 > 150 && r>>8 < 90
}

// secrets are the texts the fixtures hide in metadata; none may survive.
var secrets = []string{"secret", "GPS", "Exif", "xmpmeta", "Photoshop", "8BIM"}

func assertNoSecrets(t *testing.T, b []byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("output still holds %q", s)
		}
	}
}

// A phone's JPEG stored landscape with orientation 6 (turn 90° clockwise to show it):
// its stored top-left marker must end top-right, upright, fitted, with no metadata.
func TestPhoneJPEGOrientedFittedStripped(t *testing.T) {
	p := processor(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "upload", phoneJPEG(t, marked(160, 80)))
	before, _ := os.ReadFile(src)
	spec := defaultSpec()
	spec.MaxWidth, spec.MaxHeight, spec.Format = 30, 60, sets.FormatJPEG
	spec.Thumbnails = []Thumb{{Label: "small", Width: 10, Height: 10}, {Label: "sq", Width: 8, Height: 8, Cover: true, Format: sets.FormatPNG}}
	res, err := p.Process(context.Background(), src, spec)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(src); !bytes.Equal(before, after) {
		t.Error("src was modified")
	}
	if res.Source != "JPEG" || res.Main.Ext != ".jpg" || res.Main.Type != "image/jpeg" {
		t.Errorf("main = %+v (source %s)", res.Main, res.Source)
	}
	// 160 × 80 turned is 80 × 160; fitted in 30 × 60 it is 30 × 60.
	if res.Main.Width != 30 || res.Main.Height != 60 {
		t.Errorf("main is %d × %d, want 30 × 60", res.Main.Width, res.Main.Height)
	}
	img := decode(t, res.Main.Path)
	if b := img.Bounds(); b.Dx() != 30 || b.Dy() != 60 {
		t.Errorf("decoded main is %v", b)
	}
	if c := img.At(27, 3); !isRed(c) {
		t.Errorf("top-right is %v, want the red marker", c)
	}
	for _, pt := range []image.Point{{2, 3}, {27, 56}, {2, 56}} {
		if c := img.At(pt.X, pt.Y); !isBlue(c) {
			t.Errorf("%v is %v, want blue", pt, c)
		}
	}
	out, err := os.ReadFile(res.Main.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range jpegMarkers(t, out) {
		if m >= 0xE1 && m <= 0xEF || m == 0xFE {
			t.Errorf("marker FF%02X (APP%d or COM) left in the output", m, m-0xE0)
		}
	}
	assertNoSecrets(t, out)
	if th := res.Thumbs["small"]; th.Width != 5 || th.Height != 10 || th.Ext != ".jpg" {
		t.Errorf("small = %+v, want 5 × 10 .jpg", th)
	}
	if th := res.Thumbs["sq"]; th.Width != 8 || th.Height != 8 || th.Ext != ".png" || th.Type != "image/png" {
		t.Errorf("sq = %+v, want 8 × 8 .png", th)
	}
	for label, th := range res.Thumbs {
		if filepath.Dir(th.Path) != dir {
			t.Errorf("%s written to %s, want next to src", label, th.Path)
		}
		b, _ := os.ReadFile(th.Path)
		assertNoSecrets(t, b)
	}
	if err := res.Remove(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("after Remove, %d files in dir, want only src", len(left))
	}
}

// auto_orient = false keeps the pixels as stored and the flag that turns them.
func TestKeepOrientation(t *testing.T) {
	p := processor(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "upload", phoneJPEG(t, marked(160, 80)))
	spec := defaultSpec()
	spec.AutoOrient, spec.StripMetadata = false, false
	spec.MaxWidth, spec.MaxHeight = 60, 30 // the stored box: 160 × 80 becomes 60 × 30
	spec.Thumbnails = []Thumb{{Label: "t", Width: 20, Height: 20}}
	res, err := p.Process(context.Background(), src, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Main.Width != 60 || res.Main.Height != 30 {
		t.Errorf("main is %d × %d, want 60 × 30 as stored", res.Main.Width, res.Main.Height)
	}
	if th := res.Thumbs["t"]; th.Width != 20 || th.Height != 10 || !isRed(decode(t, th.Path).At(1, 1)) {
		t.Errorf("thumbnail = %+v, want 20 × 10 as stored, red top-left", th)
	}
	if c := decode(t, res.Main.Path).At(3, 3); !isRed(c) {
		t.Errorf("stored top-left is %v, want red", c)
	}
	img, err := vips.NewImageFromFile(res.Main.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if o := img.Orientation(); o != 6 {
		t.Errorf("orientation = %d, want 6 kept", o)
	}
}

func TestHEICBecomesJPEG(t *testing.T) {
	p := processor(t)
	dir := t.TempDir()
	img, err := vips.NewImageFromGoImage(marked(64, 48))
	if err != nil {
		t.Fatal(err)
	}
	heic, _, err := img.ExportHeif(vips.NewHeifExportParams())
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	src := writeFile(t, dir, "upload", heic)
	res, err := p.Process(context.Background(), src, defaultSpec()) // format "keep"
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != "HEIF" || res.Main.Type != "image/jpeg" || res.Main.Width != 64 || res.Main.Height != 48 {
		t.Errorf("result = %+v", res)
	}
	if got := res.Main.Name("IMG_0001.HEIC"); got != "IMG_0001.jpg" {
		t.Errorf("name = %q, want IMG_0001.jpg", got)
	}
	f, _ := os.Open(res.Main.Path)
	defer f.Close()
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil || cfg.Width != 64 {
		t.Errorf("output is not a 64 px JPEG: %v %+v", err, cfg)
	}
}

func TestPNGTextStripped(t *testing.T) {
	p := processor(t)
	src := writeFile(t, t.TempDir(), "upload", pngWithText(t, marked(40, 20)))
	res, err := p.Process(context.Background(), src, defaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	if res.Main.Ext != ".png" || res.Main.Width != 40 {
		t.Errorf("main = %+v, want a 40 px .png", res.Main)
	}
	out, _ := os.ReadFile(res.Main.Path)
	for _, c := range pngChunks(t, out) {
		switch c {
		case "IHDR", "PLTE", "IDAT", "IEND", "tRNS", "sRGB", "gAMA", "pHYs":
		default:
			t.Errorf("chunk %s left in the output", c)
		}
	}
	assertNoSecrets(t, out)
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		t.Error(err)
	}
}

// Headers claiming billions of pixels are refused from the header: fast, and with no
// memory to speak of (decoding 10^10 pixels would take 30 GB).
func TestDecompressionBombs(t *testing.T) {
	p := processor(t)
	dir := t.TempDir()
	tests := map[string][]byte{
		"png 100000 x 100000": claimingPNG(t, 100_000, 100_000),
		// libjpeg stops at 65500 a side, so a JPEG can claim at most that.
		"jpeg 60000 x 60000": claimingJPEG(t, 60_000, 60_000),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			src := writeFile(t, dir, strings.ReplaceAll(name, " ", "_"), b)
			resetPeakRSS(t)
			base := rss(t, "VmRSS")
			start := time.Now()
			_, err := p.Process(context.Background(), src, defaultSpec())
			took := time.Since(start)
			var rej *RejectError
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &rej) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if !strings.Contains(rej.Msg, "pixels") || strings.Contains(rej.Msg, dir) {
				t.Errorf("message %q", rej.Msg)
			}
			peak := rss(t, "VmHWM")
			t.Logf("refused in %v; peak RSS %d MiB over a base of %d MiB", took, peak>>20, base>>20)
			if took > time.Second {
				t.Errorf("took %v", took)
			}
			if peak-base > 20<<20 {
				t.Errorf("peak RSS grew by %d MiB", (peak-base)>>20)
			}
		})
	}
	if left, _ := os.ReadDir(dir); len(left) != len(tests) {
		t.Errorf("%d files in dir, want no outputs", len(left))
	}
}

// Bytes that are not on the allow-list never reach libvips, whatever they are called.
func TestNotAnImage(t *testing.T) {
	p := processor(t)
	dir := t.TempDir()
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i>>3)
	}
	tests := map[string][]byte{
		"random bytes":      random,
		"svg with a script": []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script></svg>`),
		"pdf":               []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"),
		"tiff":              append([]byte("II*\x00\x08\x00\x00\x00"), make([]byte, 64)...),
		"avif":              []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf\x00\x00\x00\x00"),
		"empty":             nil,
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			src := writeFile(t, dir, strconv.Quote(name), b)
			before := p.toVips.Load()
			_, err := p.Process(context.Background(), src, defaultSpec())
			if !errors.Is(err, ErrNotAnImage) {
				t.Fatalf("err = %v, want ErrNotAnImage", err)
			}
			if p.toVips.Load() != before {
				t.Error("the file was handed to libvips")
			}
		})
	}
	// A JPEG signature on a file that is not one gets to libvips, which refuses it.
	src := writeFile(t, dir, "fake.jpg", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, "<svg><script>alert(1)</script></svg>"...))
	if _, err := p.Process(context.Background(), src, defaultSpec()); !errors.Is(err, ErrNotAnImage) {
		t.Errorf("fake JPEG: err = %v, want ErrNotAnImage", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != len(tests)+1 {
		t.Errorf("%d files in dir, want no outputs", len(left))
	}
}

// Were the sniffing ever wrong, libvips itself refuses the formats off the list.
func TestLoadersBlocked(t *testing.T) {
	processor(t)
	dir := t.TempDir()
	svg := writeFile(t, dir, "x.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`))
	img, err := vips.NewImageFromGoImage(marked(8, 8))
	if err != nil {
		t.Fatal(err)
	}
	tiffBytes, _, err := img.ExportTiff(vips.NewTiffExportParams())
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	tiff := writeFile(t, dir, "x.tif", tiffBytes)
	for _, path := range []string{svg, tiff} {
		if img, err := vips.LoadThumbnailFromFile(path, 4, 4, vips.InterestingNone, vips.SizeDown, nil); err == nil {
			img.Close()
			t.Errorf("libvips loaded %s", filepath.Base(path))
		}
	}
}

func TestWebPClampedAndNames(t *testing.T) {
	if got := box(20000, sets.FormatWebP); got != 16383 {
		t.Errorf("webp box = %d", got)
	}
	if got := box(0, sets.FormatPNG); got != maxCoord {
		t.Errorf("unbounded box = %d", got)
	}
	tests := map[string]struct {
		ext, name, want string
	}{
		"heic to jpg":          {".jpg", "IMG_0001.HEIC", "IMG_0001.jpg"},
		"jpeg kept as written": {".jpg", "cat.JPEG", "cat.JPEG"},
		"png to webp":          {".webp", "a.b.png", "a.b.webp"},
		"no extension":         {".png", "scan", "scan.png"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := (Output{Ext: tt.ext}).Name(tt.name); got != tt.want {
				t.Errorf("Name(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestSniff(t *testing.T) {
	tests := map[string]struct {
		b    string
		want kind
	}{
		"jpeg":        {"\xff\xd8\xff\xe1", kindJPEG},
		"png":         {"\x89PNG\r\n\x1a\n....", kindPNG},
		"webp":        {"RIFF\x00\x00\x00\x00WEBPVP8 ", kindWebP},
		"gif":         {"GIF89a..", kindGIF},
		"heic":        {"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", kindHEIF},
		"mif1 + heic": {"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", kindHEIF},
		"mif1 + avif": {"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", unknown},
		"mp4":         {"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomiso2", unknown},
		"riff wave":   {"RIFF\x00\x00\x00\x00WAVEfmt ", unknown},
		"svg":         {"<svg", unknown},
		"short":       {"\xff\xd8", unknown},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := sniff([]byte(tt.b)); got != tt.want {
				t.Errorf("sniff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSpecFor(t *testing.T) {
	if _, ok := SpecFor(&sets.Set{}); ok {
		t.Error("a set without an image block has a Spec")
	}
	im := sets.DefaultImage()
	im.MaxWidth = 100
	spec, ok := SpecFor(&sets.Set{Image: &im, Thumbnails: []sets.Thumbnail{{Label: "s", Width: 3, Height: 4, Fit: sets.FitCover, Format: sets.FormatKeep}}})
	want := Spec{AutoOrient: true, StripMetadata: true, MaxWidth: 100, Format: "keep", Quality: 85, MaxPixels: 50_000_000,
		Thumbnails: []Thumb{{Label: "s", Width: 3, Height: 4, Cover: true, Format: "keep"}}}
	if !ok || fmt.Sprint(spec) != fmt.Sprint(want) {
		t.Errorf("spec = %+v", spec)
	}
}

// Twelve phones finishing at once on two workers: all done, never more than two
// running, and memory bounded by the running jobs rather than the waiting ones.
func TestConcurrentPhotosBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("12 MP photos")
	}
	p, err := Start(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := photoFile(t, dir, 4032, 3024, "jpeg")
	spec := defaultSpec()
	spec.MaxWidth, spec.MaxHeight, spec.Format = 2048, 2048, sets.FormatJPEG
	spec.Thumbnails = []Thumb{{Label: "small", Width: 300, Height: 300}}
	resetPeakRSS(t)
	base := rss(t, "VmRSS")
	var wg sync.WaitGroup
	errs := make([]error, 12)
	start := time.Now()
	for i := range errs {
		wg.Go(func() {
			res, err := p.Process(context.Background(), src, spec)
			if err == nil && (res.Main.Width != 2048 || res.Main.Height != 1536 || res.Thumbs["small"].Width != 300) {
				err = fmt.Errorf("result %+v", res)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	peak := rss(t, "VmHWM")
	t.Logf("12 jobs of a 12 MP JPEG on 2 workers in %v; peak RSS %d MiB, %d MiB over the base of %d MiB", took.Round(time.Millisecond), peak>>20, (peak-base)>>20, base>>20)
	if got := p.peak.Load(); got != 2 {
		t.Errorf("at most %d jobs ran at once, want 2", got)
	}
	// The goal is 120 MiB per running job; the test allows that for both workers.
	if limit := int64(2 * 120 << 20); peak-base > limit {
		t.Errorf("peak RSS grew by %d MiB, more than %d MiB", (peak-base)>>20, limit>>20)
	}
	if n, _ := os.ReadDir(dir); len(n) != 1+12*2 {
		t.Errorf("%d files, want src and 24 outputs", len(n))
	}
}

func TestCancellation(t *testing.T) {
	p, err := Start(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	small := writeFile(t, dir, "small", encodeJPEG(t, marked(32, 32)))

	t.Run("ended before: nothing done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := p.toVips.Load()
		if _, err := p.Process(ctx, small, defaultSpec()); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if p.toVips.Load() != before {
			t.Error("work was done")
		}
	})

	t.Run("deadline while waiting", func(t *testing.T) {
		if err := p.gate.acquire(context.Background()); err != nil { // the one worker is busy
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Process(ctx, small, defaultSpec())
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Errorf("err = %v after %v", err, time.Since(start))
		}
		p.gate.release()
		// The slot it gave up is not lost.
		if _, err := p.Process(context.Background(), small, defaultSpec()); err != nil {
			t.Error(err)
		}
	})

	t.Run("started: finished anyway", func(t *testing.T) {
		big := photoFile(t, dir, 4032, 3024, "jpeg")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var res Result
		go func() {
			var err error
			res, err = p.Process(ctx, big, defaultSpec())
			done <- err
		}()
		for p.running.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("a started job returned %v", err)
		}
		if fi, err := os.Stat(res.Main.Path); err != nil || fi.Size() == 0 {
			t.Errorf("output: %v", err)
		}
	})
}

func TestGateFIFO(t *testing.T) {
	g := newGate(1)
	if err := g.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if err := g.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			g.release()
		})
		for g.waiting() != i+1 { // queue them in a known order
			time.Sleep(time.Millisecond)
		}
	}
	g.release()
	wg.Wait()
	if !slices.Equal(order, []int{0, 1, 2, 3, 4}) {
		t.Errorf("order = %v, want arrival order", order)
	}
	if g.free != 1 {
		t.Errorf("free = %d after all released", g.free)
	}
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux 4.0+).
func resetPeakRSS(t testing.TB) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// rss reads a field of /proc/self/status ("VmRSS", "VmHWM") in bytes.
func rss(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
