package sets

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Location is where data_dir or a destination is: a local directory, or a prefix in an
// S3 bucket. Exactly one of Path and Bucket is set.
type Location struct {
	Path   string // local: absolute and cleaned, as written paths always were
	Bucket string // S3: a name S3 accepts
	// Prefix is S3's key prefix: "" (the bucket's root) or ending in "/", with no empty,
	// "." or ".." segment.
	Prefix string
}

// IsS3 reports whether l is in S3.
func (l Location) IsS3() bool { return l.Bucket != "" }

// String is the local path, or s3://bucket/prefix.
func (l Location) String() string {
	if l.IsS3() {
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return l.Path
}

// MarshalText makes logs (text and JSON alike) show a Location as String does.
func (l Location) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Join is the location of name inside l: a subdirectory, or a longer prefix.
func (l Location) Join(name string) Location {
	if l.IsS3() {
		return Location{Bucket: l.Bucket, Prefix: l.Prefix + name + "/"}
	}
	return Location{Path: filepath.Join(l.Path, name)}
}

// contains reports whether l strictly contains other: lexically for local paths (the
// config is checked before any directory exists), by key prefix in one bucket for S3.
func (l Location) contains(other Location) bool {
	switch {
	case l.IsS3() != other.IsS3():
		return false
	case l.IsS3():
		return l.Bucket == other.Bucket && l.Prefix != other.Prefix && strings.HasPrefix(other.Prefix, l.Prefix)
	}
	return within(l.Path, other.Path)
}

// scheme is how a URL begins. A path that begins so is never taken for a local one:
// data_dir = "s3:/x" or "gs://x" used to become a folder named "s3:" or "gs:".
var scheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// location reads a local path or an s3:// URL; what names the attribute in messages
// (`data_dir`, `destination of set "photos"`).
func (d *decoder) location(attr *hcl.Attribute, what string, dst *Location) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	if s == "" {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must not be empty", attr.Name)))
		return false
	}
	loc, why := parseLocation(s, what)
	if m := scheme.FindStringSubmatch(s); m != nil && strings.EqualFold(m[1], "s3") {
		d.s3Written = true // even a wrong one: the s3 block is meant for it
	}
	if why != "" {
		d.add(errorAt(attr.Expr.Range(), why))
		return false
	}
	if !loc.IsS3() {
		loc.Path = d.path(s)
	}
	*dst = loc
	return true
}

// parseLocation parses an s3:// URL, or returns a Location with an empty Path for the
// caller to resolve. why is the problem, a whole message, or "".
func parseLocation(s, what string) (loc Location, why string) {
	m := scheme.FindStringSubmatch(s)
	if m == nil {
		return Location{}, ""
	}
	rest := s[len(m[0]):]
	slashes := strings.HasPrefix(rest, "//")
	switch {
	case !slashes && len(m[1]) == 1:
		// A one-letter "scheme" without // is a Windows drive, or a folder like "c:".
		return Location{}, ""
	case !strings.EqualFold(m[1], "s3"):
		why = fmt.Sprintf("unsupported scheme %q in %s: use a local path or s3://bucket/prefix/", m[1], what)
		if !slashes {
			why += fmt.Sprintf(` (a local folder whose name has a colon is written "./%s")`, s)
		}
		return Location{}, why
	case !slashes:
		return Location{}, fmt.Sprintf("invalid S3 location %q in %s: write s3://bucket/prefix/", s, what)
	}
	rest = rest[2:]
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		part := "a query"
		if rest[i] == '#' {
			part = "a fragment"
		}
		return Location{}, fmt.Sprintf(`%s (%s) has %s: an S3 location is s3://bucket/prefix/, without "?" or "#"`, what, s, part)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Location{}, fmt.Sprintf("%s (%s) names no bucket: write s3://bucket/prefix/", what, s)
	}
	if rule := bucketProblem(bucket); rule != "" {
		return Location{}, fmt.Sprintf("invalid S3 bucket %q in %s: %s", bucket, what, rule)
	}
	if prefix != "" {
		for _, seg := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
			switch seg {
			case "":
				return Location{}, fmt.Sprintf(`%s (%s) has an empty segment ("//") in its prefix: S3 would keep it in every key; write single slashes`, what, s)
			case ".", "..":
				return Location{}, fmt.Sprintf(`%s (%s) has a %q segment in its prefix: S3 keys are literal, so it would not mean what it says; write the prefix without "." or ".."`, what, s, seg)
			}
		}
		prefix = strings.TrimSuffix(prefix, "/") + "/"
	}
	return Location{Bucket: bucket, Prefix: prefix}, ""
}

var (
	ipLike = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)
	// Reserved by S3 for its own names: access points, Object Lambda, directory and
	// table buckets, demo buckets.
	bucketPrefixes = []string{"xn--", "sthree-", "amzn-s3-demo-"}
	bucketSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}
)

// bucketProblem says which of S3's naming rules for general purpose buckets name
// breaks, or returns "".
func bucketProblem(name string) string {
	if n := len(name); n < 3 || n > 63 {
		return fmt.Sprintf("a bucket name must be 3 to 63 characters long, not %d", n)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Sprintf("a bucket name may hold only lower-case letters, digits, dots and hyphens, not %q", string(c))
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return "a bucket name must begin and end with a letter or a digit"
	}
	if strings.Contains(name, "..") {
		return "a bucket name must not have two dots in a row"
	}
	if ipLike.MatchString(name) {
		return "a bucket name must not be formatted as an IP address"
	}
	for _, p := range bucketPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Sprintf("a bucket name must not begin with %q (S3 reserves it)", p)
		}
	}
	for _, s := range bucketSuffixes {
		if strings.HasSuffix(name, s) {
			return fmt.Sprintf("a bucket name must not end with %q (S3 reserves it)", s)
		}
	}
	return ""
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
