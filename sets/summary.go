package sets

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// WriteSummary prints what `uploadsets check` shows for a good config: the server
// settings, then each set as clients and operators will meet it.
func (c *Config) WriteSummary(w io.Writer) {
	var b strings.Builder
	line := func(indent, label, value string) {
		fmt.Fprintf(&b, "%s%-*s %s\n", indent, 15-len(indent), label+":", value)
	}
	line("", "config", c.Filename)
	line("", "listen", c.Listen)
	line("", "public_url", orNone(c.PublicURL, "(from each request's Host)"))
	line("", "data_dir", c.DataDir.String())
	if c.S3 != nil {
		line("", "s3", c.S3.summary())
	}
	if c.Redis != nil {
		line("", "redis", redacted(c.Redis.URL))
	}
	line("", "max_size", FormatSize(c.MaxSize))
	line("", "expire_after", formatDuration(c.ExpireAfter))
	if !c.DataDir.IsS3() {
		line("", "file_mode", fmt.Sprintf("%#o (directories %#o)", c.FileMode, c.DirMode))
	}
	line("", "log", c.LogLevel+", "+c.LogFormat)
	if c.ImageWorkers > 0 {
		line("", "image_workers", fmt.Sprint(c.ImageWorkers))
	}
	if len(c.TrustedProxies) > 0 {
		line("", "trusted_proxies", fmt.Sprint(c.TrustedProxies))
	}
	if len(c.Sets) == 0 {
		b.WriteString("\nno sets: nothing can be uploaded\n")
	}
	for _, s := range c.Sets {
		fmt.Fprintf(&b, "\nset %q\n", s.Name)
		line("  ", "endpoint", c.PublicURL+"/uploads/"+s.Name+"/")
		line("  ", "extensions", s.Extensions.String())
		line("  ", "max_size", FormatSize(s.MaxSize))
		line("  ", "naming", string(s.Naming))
		line("  ", "destination", s.Destination.String())
		line("  ", "url", orNone(s.URL, c.PublicURL+"/files/"+s.Name+"/ (served by uploadsets)"))
		if s.ExpireAfter != c.ExpireAfter {
			line("  ", "expire_after", formatDuration(s.ExpireAfter))
		}
		if !s.Destination.IsS3() && (s.FileMode != c.FileMode || s.DirMode != c.DirMode) {
			line("  ", "file_mode", fmt.Sprintf("%#o (directories %#o)", s.FileMode, s.DirMode))
		}
		if s.Auth != nil {
			files := "files need a token"
			if s.Auth.PublicFiles {
				files = "files public"
			}
			line("  ", "auth", "HS256 token required ("+files+")")
		}
		if im := s.Image; im != nil {
			box := "any size"
			if im.MaxWidth > 0 || im.MaxHeight > 0 {
				box = fmt.Sprintf("fit in %dx%d", im.MaxWidth, im.MaxHeight)
			}
			line("  ", "image", fmt.Sprintf("%s, %s, quality %d, at most %d pixels", im.Format, box, im.Quality, im.MaxPixels))
			for _, t := range s.Thumbnails {
				line("  ", "thumbnail", fmt.Sprintf("%s: %dx%d %s, thumbs/%s/", t.Label, t.Width, t.Height, t.Fit, t.Label))
			}
		}
	}
	io.WriteString(w, b.String())
}

func (c *S3Config) summary() string {
	where := "AWS"
	if c.Endpoint != "" {
		where = "endpoint " + c.Endpoint
	}
	region := "region from the AWS SDK's default chain"
	if c.Region != "" {
		region = "region " + c.Region
	}
	s := where + ", " + region
	if c.PathStyle {
		s += ", path-style"
	}
	return s
}

// redacted hides a password in a URL that Load accepted.
func redacted(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// formatDuration drops the zero tails of time.Duration.String: "24h", not "24h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
