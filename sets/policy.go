package sets

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Set is one upload set: where its files go and what it accepts.
type Set struct {
	Name       string
	Extensions Extensions
	// MaxSize is the set's max_size, or the server-wide one when absent. Zero or less
	// means no limit, which only a hand-built Set can have: Load always sets it.
	MaxSize     int64
	Naming      Naming   // default original
	Destination Location // local (absolute) or on S3; default <uploads_default_dest>/<name>
	// URL is the public base URL of placed files, ending in "/" when non-empty. "" means
	// this server serves them under /files/<name>/.
	URL         string
	ExpireAfter time.Duration // the set's expire_after, or the server-wide one
	FileMode    os.FileMode   // of its placed files (file_mode)
	DirMode     os.FileMode   // of the directories the server creates for it (dir_mode)
	// Image is the processing of every upload (image block), nil for a set that places
	// files as uploaded. A set with thumbnails and no image block gets DefaultImage.
	Image *Image
	// Thumbnails are derived from the processed image, in file order, labels unique.
	Thumbnails []Thumbnail
	// DestinationAt is where the destination comes from in the config (the set's
	// destination, uploads_default_dest or the set's label), for problems found at start.
	DestinationAt hcl.Range
	// Auth, when not nil, makes the set's uploads (and, unless PublicFiles, its files)
	// need a token signed with Auth.Key.
	Auth *Auth
}

// Rule names the part of a set's policy an upload failed.
type Rule string

const (
	RuleName      Rule = "name"      // no usable file name
	RuleExtension Rule = "extension" // extension not allowed
	RuleSize      Rule = "size"      // over max_size
	RuleContent   Rule = "content"   // bytes are not what the extension claims
	RuleImage     Rule = "image"     // an image set's upload that is not an image it decodes
	RuleImageSize Rule = "pixels"    // an image with more pixels than max_pixels
)

// Sentinels for errors.Is, one per Rule.
var (
	ErrNoName    = errors.New("no file name")
	ErrExtension = errors.New("extension not allowed")
	ErrTooLarge  = errors.New("too large")
	ErrContent   = errors.New("content does not match extension")
	ErrNotImage  = errors.New("not an image")
	ErrPixels    = errors.New("too many pixels")
)

var ruleErrs = map[Rule]error{
	RuleName:      ErrNoName,
	RuleExtension: ErrExtension,
	RuleSize:      ErrTooLarge,
	RuleContent:   ErrContent,
	RuleImage:     ErrNotImage,
	RuleImageSize: ErrPixels,
}

// PolicyError is an upload refused by a set's policy. Msg is written for the person
// uploading, so adapters can send it as is.
type PolicyError struct {
	Set  string
	Rule Rule
	Msg  string // complete sentence in plain words naming the set and the rule
}

func (e *PolicyError) Error() string { return e.Msg }

// Unwrap returns the sentinel matching Rule.
func (e *PolicyError) Unwrap() error { return ruleErrs[e.Rule] }

func (s *Set) refuse(rule Rule, format string, args ...any) *PolicyError {
	return &PolicyError{Set: s.Name, Rule: rule, Msg: fmt.Sprintf("set %q ", s.Name) + fmt.Sprintf(format, args...)}
}

// Admit decides, before any byte is stored, whether an upload named name (the client's
// hint) of size bytes may be created in the set. It returns nil or a *PolicyError. The
// extension is judged on SafeName's result, the name the file will really get, so
// "x.png.php" is a .php file. A negative size (length not known yet) is not checked.
func (s *Set) Admit(name string, size int64) error {
	safe, err := SafeName(name)
	if err != nil {
		return s.refuse(RuleName, `needs a file name: send it as "filename" (or "name") in Upload-Metadata`)
	}
	if ext := Ext(safe); !s.Extensions.Allows(ext) {
		if ext == "" {
			return s.refuse(RuleExtension, "does not accept files without an extension (allowed: %s)", s.Extensions)
		}
		return s.refuse(RuleExtension, "does not accept %q files (allowed: %s)", "."+ext, s.Extensions)
	}
	if s.MaxSize > 0 && size > s.MaxSize {
		return s.refuse(RuleSize, "accepts files up to %s; this one is %s (%d bytes)", FormatSize(s.MaxSize), FormatSize(size), size)
	}
	return nil
}

// ContentMismatch is the error for a file whose bytes are not what its extension claims,
// found after upload by sniffing (detected is a MIME type such as "text/html").
func (s *Set) ContentMismatch(name, ext, detected string) error {
	return s.refuse(RuleContent, "rejected %q: its content is %s, not a %s file", name, detected, "."+normExt(ext))
}

// ImageRejected is the error for an upload to an image set that is not an image it
// takes, or one with more pixels than max_pixels (pixels); why completes "name ...".
func (s *Set) ImageRejected(name string, pixels bool, why string) error {
	rule := RuleImage
	if pixels {
		rule = RuleImageSize
	}
	return s.refuse(rule, "rejected %q: it %s", name, strings.TrimPrefix(why, "it "))
}
