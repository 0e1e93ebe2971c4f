package sets

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Image is a set's image block: every upload of the set is decoded, oriented, fitted,
// stripped and re-encoded before it is placed. The values are plain so that sets/ stays
// free of the image library; internal/images turns them into a job.
type Image struct {
	AutoOrient    bool // apply the EXIF orientation to the pixels; default true
	StripMetadata bool // drop EXIF (with GPS), XMP, IPTC and comments; default true
	// MaxWidth and MaxHeight bound the output (0: that side is not bounded). An image
	// is shrunk to fit inside, never enlarged.
	MaxWidth, MaxHeight int
	// Format is the output format: "keep" (the default), "jpeg", "png" or "webp".
	// "keep" keeps JPEG, PNG, WebP and GIF as they came, and turns HEIC/HEIF into
	// JPEG: browsers other than Safari cannot show HEIC, and encoding it needs an
	// HEVC encoder that slim servers seldom have.
	Format    string
	Quality   int   // 1-100, of lossy encodings; default 85
	MaxPixels int64 // width × height read from the header above this is refused before decoding; default 50 000 000
	// At is the image block, or the first thumbnail block when the set has none, for
	// problems found at start (a libvips without HEIC support, say).
	At hcl.Range
}

// Thumbnail is a derived image placed as thumbs/{Label}/{name} in the destination.
type Thumbnail struct {
	Label         string // one path segment, like a set name
	Width, Height int    // the box; both required
	Fit           string // "inside" (default): fit in the box; "cover": fill it, cropping the middle
	// Format is "jpeg", "png" or "webp", or "keep" (the default): the format of the
	// set's processed image, so a thumbnail has the same name as its image.
	Format string
	At     hcl.Range // the block's label
}

// Image formats as written in the config.
const (
	FormatKeep = "keep"
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatWebP = "webp"
)

// Fits of a thumbnail.
const (
	FitInside = "inside"
	FitCover  = "cover"
)

var (
	imageFormats = []string{FormatKeep, FormatJPEG, FormatPNG, FormatWebP}
	thumbFits    = []string{FitInside, FitCover}
)

// maxSide is the largest width or height each output format can hold; a box beyond it
// is clamped by the processor and deserves a warning here. JPEG is libjpeg's limit, not
// the format's 65535.
var maxSide = map[string]int{FormatJPEG: 65500, FormatWebP: 16383}

// imageExtensions are the extensions whose files the processor decodes. A set with an
// image block that accepts more is warned: the rest would pass creation and then be
// rejected at the end of the upload.
var imageExtensions = []string{"gif", "heic", "heif", "jpe", "jpeg", "jpg", "png", "webp"}

// DefaultImage is the processing of a set that has thumbnail blocks and no image block:
// making thumbnails means decoding, so the image itself is processed too, with these
// values, rather than placed as uploaded next to derived files that disagree with it
// (a sideways original with an upright thumbnail).
func DefaultImage() Image {
	return Image{AutoOrient: true, StripMetadata: true, Format: FormatKeep, Quality: 85, MaxPixels: 50_000_000}
}

var imageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "auto_orient"}, {Name: "strip_metadata"}, {Name: "max_width"}, {Name: "max_height"},
	{Name: "format"}, {Name: "quality"}, {Name: "max_pixels"},
}}

var thumbnailSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "width"}, {Name: "height"}, {Name: "fit"}, {Name: "format"},
}}

// images decodes a set's image and thumbnail blocks. Both are nil when the set has
// neither: it places files as uploaded, exactly as before images existed.
func (d *decoder) images(name string, blocks hcl.Blocks, ext Extensions) (*Image, []Thumbnail) {
	imgs, thumbs := blocks.OfType("image"), blocks.OfType("thumbnail")
	if len(imgs) == 0 && len(thumbs) == 0 {
		return nil, nil
	}
	img := DefaultImage()
	var quality *hcl.Attribute // set when quality was written, for the png warning
	if len(imgs) > 0 {
		img.At = imgs[0].DefRange
		for i, b := range imgs {
			if i > 0 {
				d.add(errorAt(b.DefRange, fmt.Sprintf("duplicate image block in set %q; the first is at %s", name, at(imgs[0].DefRange))))
				continue
			}
			content, diags := b.Body.Content(imageSchema)
			d.add(diags...)
			attrs := content.Attributes
			d.boolean(attrs["auto_orient"], &img.AutoOrient)
			d.boolean(attrs["strip_metadata"], &img.StripMetadata)
			d.count(attrs["max_width"], maxCoord, &img.MaxWidth)
			d.count(attrs["max_height"], maxCoord, &img.MaxHeight)
			d.oneOf(attrs["format"], imageFormats, &img.Format)
			if d.count(attrs["quality"], 100, &img.Quality) {
				quality = attrs["quality"]
			}
			d.pixels(attrs["max_pixels"], &img.MaxPixels)
			d.boxFits(name, "the image ", img.Format, img.MaxWidth, attrs["max_width"])
			d.boxFits(name, "the image ", img.Format, img.MaxHeight, attrs["max_height"])
			if !img.AutoOrient && img.StripMetadata && attrs["auto_orient"] != nil {
				d.add(warningAt(attrs["auto_orient"].Expr.Range(), fmt.Sprintf("set %q has auto_orient = false and strip_metadata = true: the orientation flag is stripped with the rest, so photos taken sideways will show sideways", name)))
			}
		}
	} else {
		img.At = thumbs[0].LabelRanges[0]
	}
	if quality != nil && img.Format == FormatPNG {
		d.add(warningAt(quality.Expr.Range(), fmt.Sprintf(`quality has no effect with format = "png" in set %q: PNG is lossless`, name)))
	}
	list := d.thumbnails(name, thumbs, img.Format)
	if other := notImages(ext); other != "" {
		d.add(warningAt(img.At, fmt.Sprintf("set %q processes images but accepts %s: uploads with other extensions will be rejected as not an image (images are %s)", name, other, strings.Join(imageExtensions, ", "))))
	}
	return &img, list
}

// imgFormat is what a thumbnail's "keep" stands for.
func (d *decoder) thumbnails(name string, blocks hcl.Blocks, imgFormat string) []Thumbnail {
	var list []Thumbnail
	first := map[string]hcl.Range{}
	for _, b := range blocks {
		label, at, dup, labelled := d.labelled(b, "thumbnail", fmt.Sprintf(" in set %q", name), first)
		if !labelled {
			continue
		}
		t := Thumbnail{Label: label, Fit: FitInside, Format: FormatKeep, At: at}
		ok := !dup
		if !setName.MatchString(t.Label) {
			d.add(errorAt(t.At, fmt.Sprintf(`invalid thumbnail label %q: use 1 to 63 lower-case letters, digits, "_" or "-", starting with a letter or digit (it is a folder under thumbs/ and part of URLs)`, t.Label)))
			ok = false
		}
		content, diags := b.Body.Content(thumbnailSchema)
		d.add(diags...)
		attrs := content.Attributes
		for _, side := range []string{"width", "height"} {
			if attrs[side] == nil {
				d.add(errorAt(b.DefRange, fmt.Sprintf("thumbnail %q of set %q needs a %s: write width and height, the box it is fitted in", t.Label, name, side)))
				ok = false
			}
		}
		ok = d.count(attrs["width"], maxCoord, &t.Width) && ok
		ok = d.count(attrs["height"], maxCoord, &t.Height) && ok
		d.oneOf(attrs["fit"], thumbFits, &t.Fit)
		d.oneOf(attrs["format"], imageFormats, &t.Format)
		format := t.Format
		if format == FormatKeep {
			format = imgFormat
		}
		what := fmt.Sprintf("thumbnail %q ", t.Label)
		d.boxFits(name, what, format, t.Width, attrs["width"])
		d.boxFits(name, what, format, t.Height, attrs["height"])
		if ok {
			list = append(list, t)
		}
	}
	return list
}

// boxFits warns when a box side is larger than the format can hold. It is a warning,
// not an error: the processor clamps the box, so such a config works, only not as
// written. With "keep" every source already fits its own format.
func (d *decoder) boxFits(name, what, format string, side int, attr *hcl.Attribute) {
	if limit, ok := maxSide[format]; ok && side > limit {
		d.add(warningAt(attr.Expr.Range(), fmt.Sprintf("%s %d of %sin set %q is more than %s images hold (%d pixels a side): they are fitted to %d", attr.Name, side, what, name, format, limit, limit)))
	}
}

// notImages describes what ext accepts beyond imageExtensions, or returns "".
func notImages(ext Extensions) string {
	if ext.Any() {
		return "any extension"
	}
	var other []string
	for _, e := range ext.List() {
		if !slices.Contains(imageExtensions, e) {
			other = append(other, e)
		}
	}
	if len(other) == 0 {
		return ""
	}
	return strings.Join(other, ", ")
}

func at(r hcl.Range) string { return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column) }

// maxCoord is libvips's largest image side.
const maxCoord = 10_000_000

// count reads a whole number from 1 to limit: pixels, or a quality.
func (d *decoder) count(attr *hcl.Attribute, limit int64, dst *int) bool {
	var n int64
	if !d.whole(attr, limit, &n) {
		return false
	}
	*dst = int(n)
	return true
}

func (d *decoder) pixels(attr *hcl.Attribute, dst *int64) bool {
	return d.whole(attr, maxCoord*maxCoord, dst)
}

func (d *decoder) whole(attr *hcl.Attribute, limit int64, dst *int64) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	if val.Type() != cty.Number {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must be a whole number, without quotes", attr.Name)))
		return false
	}
	bf := val.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || n <= 0 || n > limit {
		// Shown through float64: bf.Text on 1e99999999 takes seconds.
		f, _ := bf.Float64()
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %s: must be a whole number from 1 to %d", attr.Name, strconv.FormatFloat(f, 'g', -1, 64), limit)))
		return false
	}
	*dst = n
	return true
}
