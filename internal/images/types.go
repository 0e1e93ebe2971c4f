package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/uploadsets/uploadsets/sets"
)

// What the package offers, with or without cgo: a binary built with CGO_ENABLED=0 has
// no libvips (see nocgo.go), but the types and SpecFor are the same.

// Sentinels for errors.Is. Both are the uploader's fault, answered 422; every other
// error of Process is internal.
var (
	ErrNotAnImage = errors.New("not an image")       // 422 ERR_NOT_AN_IMAGE
	ErrTooLarge   = errors.New("image is too large") // 422 ERR_IMAGE_TOO_LARGE
)

// RejectError is an upload refused for its content. Msg is written for the person
// uploading and holds no path; the wiring prefixes the set's name.
type RejectError struct {
	Err    error  // ErrNotAnImage or ErrTooLarge
	Msg    string // e.g. "is not an image (JPEG, PNG, WebP, GIF or HEIC)"
	Detail string // for the log only: libvips's message, which may name files
}

func (e *RejectError) Error() string { return e.Msg }
func (e *RejectError) Unwrap() error { return e.Err }

// Spec is one set's processing. Build it with SpecFor.
type Spec struct {
	AutoOrient    bool
	StripMetadata bool
	MaxWidth      int    // 0: not bounded
	MaxHeight     int    // 0: not bounded
	Format        string // sets.FormatKeep, FormatJPEG, FormatPNG or FormatWebP
	Quality       int    // 1-100
	MaxPixels     int64  // 0: not bounded
	Thumbnails    []Thumb
	// Dir is where outputs are created; "" means next to src. Give a directory on the
	// destination's file system and placement can be a rename.
	Dir string
}

// Thumb is one thumbnail of a Spec.
type Thumb struct {
	Label         string
	Width, Height int
	Cover         bool   // fill the box, cropping the middle; else fit inside it
	Format        string // as Spec.Format; sets.FormatKeep: the main output's format
}

// SpecFor is the processing of set s, and false when s places files as uploaded.
func SpecFor(s *sets.Set) (Spec, bool) {
	if s.Image == nil {
		return Spec{}, false
	}
	im := s.Image
	spec := Spec{
		AutoOrient: im.AutoOrient, StripMetadata: im.StripMetadata,
		MaxWidth: im.MaxWidth, MaxHeight: im.MaxHeight,
		Format: im.Format, Quality: im.Quality, MaxPixels: im.MaxPixels,
	}
	for _, t := range s.Thumbnails {
		spec.Thumbnails = append(spec.Thumbnails, Thumb{Label: t.Label, Width: t.Width, Height: t.Height, Cover: t.Fit == sets.FitCover, Format: t.Format})
	}
	return spec, true
}

// Output is one file Process wrote. The caller owns it: it places it (rename or link)
// or removes it.
type Output struct {
	Path          string // a new file, synced, mode 0600
	Ext           string // ".jpg", ".png", ".webp" or ".gif"
	Type          string // media type, "image/jpeg"...
	Width, Height int
	Size          int64
}

// Name is name with the extension of o's format. An extension that already names the
// format is kept as written ("IMG.JPEG" stays), any other is replaced ("IMG_0001.HEIC"
// becomes "IMG_0001.jpg").
func (o Output) Name(name string) string {
	ext := filepath.Ext(name)
	if formats[extFormat[strings.ToLower(strings.TrimPrefix(ext, "."))]].ext == o.Ext {
		return name
	}
	return strings.TrimSuffix(name, ext) + o.Ext
}

// Result is what Process made.
type Result struct {
	Main   Output
	Thumbs map[string]Output // by label
	Source string            // the sniffed source format: "JPEG", "PNG", "WebP", "GIF" or "HEIF"
}

// Remove deletes every output, for a caller that gives up before placing them.
func (r *Result) Remove() error {
	var errs []error
	for _, o := range r.outputs() {
		if err := os.Remove(o.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Result) outputs() []Output {
	list := make([]Output, 0, 1+len(r.Thumbs))
	if r.Main.Path != "" {
		list = append(list, r.Main)
	}
	for _, t := range r.Thumbs {
		list = append(list, t)
	}
	return list
}

// formatGIF is only ever "keep" of a GIF: the config cannot ask for GIF.
const formatGIF = "gif"

type format struct {
	ext, mediaType string
	maxSide        int
}

var formats = map[string]format{
	sets.FormatJPEG: {".jpg", "image/jpeg", 65500},
	sets.FormatPNG:  {".png", "image/png", 0},
	sets.FormatWebP: {".webp", "image/webp", 16383},
	formatGIF:       {".gif", "image/gif", 65535},
}

// extFormat maps the extensions a name may carry to the format they name.
var extFormat = map[string]string{
	"jpg": sets.FormatJPEG, "jpeg": sets.FormatJPEG, "jpe": sets.FormatJPEG,
	"png": sets.FormatPNG, "webp": sets.FormatWebP, "gif": formatGIF,
}
