package sets

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestImageGolden shows what the image and thumbnail blocks decode to, with the
// warnings a loadable config can still deserve.
func TestImageGolden(t *testing.T) {
	cfg, diags := Load("testdata/image_good.hcl")
	var out bytes.Buffer
	WriteDiagnostics(&out, diags)
	if diags.HasErrors() {
		t.Fatalf("image_good.hcl:\n%s", out.String())
	}
	for _, s := range cfg.Sets {
		fmt.Fprintf(&out, "set %q\n", s.Name)
		if s.Image == nil {
			fmt.Fprintf(&out, "  no image processing (thumbnails: %d)\n", len(s.Thumbnails))
			continue
		}
		im := s.Image
		fmt.Fprintf(&out, "  image: auto_orient=%t strip_metadata=%t box=%dx%d format=%s quality=%d max_pixels=%d at %s\n",
			im.AutoOrient, im.StripMetadata, im.MaxWidth, im.MaxHeight, im.Format, im.Quality, im.MaxPixels, at(im.At))
		for _, th := range s.Thumbnails {
			fmt.Fprintf(&out, "  thumbnail %q: %dx%d fit=%s format=%s at %s\n", th.Label, th.Width, th.Height, th.Fit, th.Format, at(th.At))
		}
	}
	golden(t, "image_good", stable(t, out.String()))
}

func TestImageErrors(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string
	}{
		"quality zero": {`set "a" {
  extensions = ["jpg"]
  image { quality = 0 }
}`, "c.hcl:3,21: invalid quality 0: must be a whole number from 1 to 100\n"},
		"format without quotes": {`set "a" {
  extensions = ["jpg"]
  image { format = jpeg }
}`, `c.hcl:3,20: format must be a string in quotes: format = "jpeg"` + "\n"},
		"thumbnail without a size": {`set "a" {
  extensions = ["jpg"]
  thumbnail "t" {}
}`, `c.hcl:3,3: thumbnail "t" of set "a" needs a width: write width and height, the box it is fitted in` + "\n" +
			`c.hcl:3,3: thumbnail "t" of set "a" needs a height: write width and height, the box it is fitted in` + "\n"},
		"upper-case label": {`set "a" {
  extensions = ["jpg"]
  thumbnail "Small" {
    width  = 1
    height = 1
  }
}`, `c.hcl:3,13: invalid thumbnail label "Small": use 1 to 63 lower-case letters, digits, "_" or "-", starting with a letter or digit (it is a folder under thumbs/ and part of URLs)` + "\n"},
		"thumbnail with an unknown format": {`set "a" {
  extensions = ["jpg"]
  thumbnail "t" {
    width  = 1
    height = 1
    format = "avif"
  }
}`, `c.hcl:6,14: invalid format "avif": must be one of ["keep" "jpeg" "png" "webp"]` + "\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) { refusedWith(t, tt.src, tt.want) })
	}
}

func TestImageAnyExtensionWarns(t *testing.T) {
	_, diags := Parse([]byte(`set "a" {
  extensions = all
  image {}
}`), "c.hcl")
	var out bytes.Buffer
	WriteDiagnostics(&out, diags)
	if diags.HasErrors() || !strings.Contains(out.String(), "c.hcl:3,3: warning: set \"a\" processes images but accepts any extension") {
		t.Errorf("diagnostics:\n%s", out.String())
	}
}
