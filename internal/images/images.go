//go:build cgo

// Package images turns an uploaded photo into what a set's image block asks for: it
// checks the type by signature and the size from the header before libvips decodes a
// pixel, then orients, fits, strips and re-encodes it, and makes the thumbnails, on a
// fixed number of workers. It writes new files and leaves placing them to the caller.
//
// It needs cgo and libvips (8.13 or later, for blocking loaders).
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/hashicorp/go-hclog"

	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/sets"
)

// Processor runs image jobs on a fixed number of workers.
type Processor struct {
	gate *gate
	log  hclog.Logger
	// For tests and metrics: files handed to libvips, jobs running and their most.
	toVips        atomic.Int64
	running, peak atomic.Int32
}

var (
	startOnce sync.Once
	startErr  error
)

// Start makes a Processor running at most workers jobs at once (≤ 0: one per core).
// libvips is started on the first call, for the life of the process (it cannot be
// restarted): its operation cache off, its threads per job so that all jobs together
// use about one thread per core, every loader but those of the allow-list blocked, and
// its warnings sent to log (the first call's) instead of stderr. Later calls share that
// libvips and get a pool of their own; a server should make one Processor and keep it
// across reloads.
func Start(workers int, log hclog.Logger) (*Processor, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	startOnce.Do(func() { startErr = startVips(workers, log.Named("vips")) })
	if startErr != nil {
		return nil, startErr
	}
	return &Processor{gate: newGate(workers), log: log}, nil
}

func startVips(workers int, log hclog.Logger) error {
	vips.LoggingSettings(func(domain string, level vips.LogLevel, msg string) {
		switch level {
		case vips.LogLevelError, vips.LogLevelCritical:
			log.Error("VipsMessage", "domain", domain, "message", msg)
		case vips.LogLevelWarning:
			log.Warn("VipsMessage", "domain", domain, "message", msg)
		default:
			log.Debug("VipsMessage", "domain", domain, "message", msg)
		}
	}, vips.LogLevelWarning)
	err := vips.Startup(&vips.Config{
		ConcurrencyLevel: max(1, runtime.NumCPU()/workers),
		// The cache is keyed by file name and would keep decoded regions of uploads
		// nobody asks for again; off, memory is what the running jobs use.
		MaxCacheFiles: 0,
		MaxCacheMem:   0,
		MaxCacheSize:  0,
	})
	if err != nil {
		return fmt.Errorf("starting libvips: %w", err)
	}
	blockLoaders()
	for _, t := range []vips.ImageType{vips.ImageTypeJPEG, vips.ImageTypePNG, vips.ImageTypeWEBP, vips.ImageTypeGIF, vips.ImageTypeHEIF} {
		if !vips.IsTypeSupported(t) {
			return fmt.Errorf("libvips %s cannot load %s images: install a libvips built with it (Debian: libvips-dev, libheif1)", vips.Version, vips.ImageTypes[t])
		}
	}
	log.Debug("VipsStarted", "version", vips.Version, "threads_per_job", max(1, runtime.NumCPU()/workers))
	return nil
}

// Process makes spec's outputs from the image at src, which it only reads.
//
// ctx bounds the wait for a worker, and only that: jobs start in the order they came
// (FIFO); if ctx ends first, Process returns ctx's error having done nothing. A job
// that has started is never cancelled (libvips cannot stop half-way and leave the
// upload in a known state, and placement must still finish): Process returns its
// result even if ctx ended meanwhile, so the time a job takes counts toward ctx's
// deadline without being cut by it. The caller decides what a late result means.
//
// Content problems are a *RejectError (errors.Is ErrNotAnImage or ErrTooLarge); on any
// error no output is left behind.
func (p *Processor) Process(ctx context.Context, src string, spec Spec) (Result, error) {
	if err := p.gate.acquire(ctx); err != nil {
		return Result{}, err
	}
	defer p.gate.release()
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for old := p.peak.Load(); n > old && !p.peak.CompareAndSwap(old, n); old = p.peak.Load() {
	}
	res, err := p.run(src, spec)
	if err != nil {
		if rmErr := res.Remove(); rmErr != nil {
			p.log.Error("ImageCleanupFailed", "error", rmErr)
		}
		return Result{}, err
	}
	return res, nil
}

func (p *Processor) run(src string, spec Spec) (res Result, err error) {
	// libvips reads "file.jpg[options]" as a file with options.
	if strings.ContainsRune(src, '[') {
		return res, fmt.Errorf("images: source path %q contains '[', which libvips would read as options", src)
	}
	k, err := sniffFile(src)
	if err != nil {
		return res, err
	}
	if k == unknown {
		return res, &RejectError{Err: ErrNotAnImage, Msg: "is not an image: only JPEG, PNG, WebP, GIF and HEIC/HEIF are accepted"}
	}
	res.Source = k.String()
	p.toVips.Add(1)
	w, h, orientation, err := header(src, k)
	if err != nil {
		return res, &RejectError{Err: ErrNotAnImage, Msg: fmt.Sprintf("is not a readable %s image", k), Detail: err.Error()}
	}
	if spec.MaxPixels > 0 && int64(w)*int64(h) > spec.MaxPixels {
		return res, &RejectError{Err: ErrTooLarge, Msg: fmt.Sprintf("is %d × %d pixels (%s); at most %s are accepted", w, h, megapixels(int64(w)*int64(h)), megapixels(spec.MaxPixels))}
	}
	dir := spec.Dir
	if dir == "" {
		dir = filepath.Dir(src)
	}
	mainFormat := outputFormat(spec.Format, k)
	boxW, boxH := box(spec.MaxWidth, mainFormat), box(spec.MaxHeight, mainFormat)
	job := job{src: src, spec: spec, orientation: orientation, dir: dir}
	var mainBuf []byte
	if res.Main, mainBuf, err = job.make(boxW, boxH, false, mainFormat, nil); err != nil {
		return res, err
	}
	// Thumbnails are made from the encoded main image, already oriented, fitted and
	// in sRGB: decoding its few megapixels (shrunk on load) costs far less than the
	// source's twelve again, and for HEIC, which has no shrink-on-load, it halves the
	// job. An image kept as stored (auto_orient = false) is made from the source,
	// where the orientation to keep is known.
	from := mainBuf
	if !spec.AutoOrient {
		from = nil
	}
	res.Thumbs = make(map[string]Output, len(spec.Thumbnails))
	for _, t := range spec.Thumbnails {
		f := mainFormat
		if t.Format != sets.FormatKeep && t.Format != "" {
			f = t.Format
		}
		out, _, err := job.make(box(t.Width, f), box(t.Height, f), t.Cover, f, from)
		if err != nil {
			return res, fmt.Errorf("thumbnail %q: %w", t.Label, err)
		}
		res.Thumbs[t.Label] = out
	}
	return res, nil
}

func sniffFile(path string) (kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return unknown, fmt.Errorf("images: %w", err)
	}
	defer f.Close()
	buf := make([]byte, sniffLen)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return unknown, fmt.Errorf("images: %w", err)
	}
	return sniff(buf[:n]), nil
}

func megapixels(n int64) string {
	return fmt.Sprintf("%.1f MP", float64(n)/1e6)
}

// maxCoord is the largest side vips_thumbnail takes: "no bound".
const maxCoord = 10_000_000

// box is a bound of side (0: none) clamped to what format can hold.
func box(side int, f string) int {
	if side <= 0 {
		side = maxCoord
	}
	if limit := formats[f].maxSide; limit > 0 {
		side = min(side, limit)
	}
	return side
}

// outputFormat resolves "keep" for a source of kind k.
func outputFormat(f string, k kind) string {
	if f != sets.FormatKeep && f != "" {
		return f
	}
	switch k {
	case kindPNG:
		return sets.FormatPNG
	case kindWebP:
		return sets.FormatWebP
	case kindGIF:
		return formatGIF
	}
	return sets.FormatJPEG // JPEG, and HEIC: see sets.Image.Format
}

// job is one Process call's source, shared by its outputs.
type job struct {
	src         string
	spec        Spec
	orientation int
	dir         string
}

// make writes one output, and returns it encoded too: src (or the image encoded in
// from, when not nil) through vips_thumbnail, which shrinks on load where the format
// can, into a w × h box, never enlarged.
func (j *job) make(w, h int, cover bool, f string, from []byte) (Output, []byte, error) {
	crop := vips.InterestingNone
	if cover {
		crop = vips.InterestingCentre
	}
	// vips_thumbnail always applies the orientation; to keep the stored pixels, fit
	// the box as the pixels are stored and turn the result back.
	keep := from == nil && !j.spec.AutoOrient && j.orientation > 1
	if keep && j.orientation >= 5 {
		w, h = h, w
	}
	var img *vips.ImageRef
	var err error
	if from != nil {
		img, err = vips.LoadThumbnailFromBuffer(from, w, h, crop, vips.SizeDown, nil)
	} else {
		img, err = vips.LoadThumbnailFromFile(j.src, w, h, crop, vips.SizeDown, nil)
	}
	if err != nil {
		return Output{}, nil, &RejectError{Err: ErrNotAnImage, Msg: "does not decode as an image", Detail: err.Error()}
	}
	defer img.Close()
	if keep {
		if err := unorient(img, j.orientation); err != nil {
			return Output{}, nil, fmt.Errorf("images: keeping the orientation: %w", err)
		}
	}
	if j.spec.StripMetadata {
		// The profile goes with the rest: make the pixels sRGB first, which is what a
		// viewer assumes of an image without one.
		if img.HasICCProfile() {
			if err := img.TransformICCProfile(vips.SRGBIEC6196621ICCProfilePath); err != nil {
				return Output{}, nil, fmt.Errorf("images: converting to sRGB: %w", err)
			}
		}
	}
	if f == sets.FormatJPEG && img.HasAlpha() {
		if err := img.Flatten(&vips.Color{R: 255, G: 255, B: 255}); err != nil {
			return Output{}, nil, fmt.Errorf("images: flattening: %w", err)
		}
	}
	buf, err := j.encode(img, f)
	if err != nil {
		return Output{}, nil, fmt.Errorf("images: encoding %s: %w", f, err)
	}
	fm := formats[f]
	path, err := writeNew(j.dir, fm.ext, buf)
	if err != nil {
		return Output{}, nil, err
	}
	return Output{Path: path, Ext: fm.ext, Type: fm.mediaType, Width: img.Width(), Height: img.Height(), Size: int64(len(buf))}, buf, nil
}

func (j *job) encode(img *vips.ImageRef, f string) ([]byte, error) {
	strip, q := j.spec.StripMetadata, j.spec.Quality
	if q <= 0 {
		q = 85
	}
	var buf []byte
	var err error
	switch f {
	case sets.FormatJPEG:
		buf, _, err = img.ExportJpeg(&vips.JpegExportParams{StripMetadata: strip, Quality: q})
	case sets.FormatPNG:
		p := vips.NewPngExportParams()
		p.StripMetadata = strip
		buf, _, err = img.ExportPng(p)
	case sets.FormatWebP:
		p := vips.NewWebpExportParams()
		p.StripMetadata, p.Quality = strip, q
		buf, _, err = img.ExportWebp(p)
	case formatGIF:
		p := vips.NewGifExportParams()
		p.StripMetadata = strip
		buf, _, err = img.ExportGIF(p)
	default:
		err = fmt.Errorf("unknown format %q", f)
	}
	return buf, err
}

// unorient undoes what vips_thumbnail did for orientation o and puts the tag back, so
// a viewer still turns the image.
func unorient(img *vips.ImageRef, o int) error {
	steps := map[int][]func() error{
		2: {func() error { return img.Flip(vips.DirectionHorizontal) }},
		3: {func() error { return img.Rotate(vips.Angle180) }},
		4: {func() error { return img.Flip(vips.DirectionVertical) }},
		5: {func() error { return img.Rotate(vips.Angle90) }, func() error { return img.Flip(vips.DirectionHorizontal) }},
		6: {func() error { return img.Rotate(vips.Angle270) }},
		7: {func() error { return img.Rotate(vips.Angle270) }, func() error { return img.Flip(vips.DirectionHorizontal) }},
		8: {func() error { return img.Rotate(vips.Angle90) }},
	}
	for _, step := range steps[o] {
		if err := step(); err != nil {
			return err
		}
	}
	return img.SetOrientation(o)
}

// writeNew writes buf to a new file in dir (O_EXCL, so nothing existing is touched)
// and syncs it, so the caller can rename it into place and trust its content.
func writeNew(dir, ext string, buf []byte) (path string, err error) {
	f, err := os.CreateTemp(dir, ".image-*"+ext)
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(buf); err == nil {
		err = durable.SyncData(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("images: writing %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}
