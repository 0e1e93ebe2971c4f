package server

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gorilla/mux"
	"github.com/tus/tusd/v2/pkg/handler"
)

// inline lists the types a browser may render in place. Anything else (HTML, SVG,
// JavaScript, XML, PDF...) is sent as an attachment: a file served from this origin
// must never run as this origin's page.
var inline = map[string]bool{
	"text/plain": true,
	"image/png":  true, "image/jpeg": true, "image/gif": true, "image/bmp": true, "image/webp": true,
	"audio/wav": true, "audio/x-wav": true, "audio/mpeg": true, "audio/aac": true, "audio/ogg": true, "audio/flac": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true,
}

// serveFile serves a set's placed files with Range support, through the set's
// os.Root so that no name can reach outside the destination.
func (s *instance) serveFile(us *uploadSet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if needsToken(us) {
			if _, err := us.verifier.Verify(r); err != nil {
				var he handler.Error
				errors.As(err, &he)
				writeTusError(w, he)
				return
			}
		}
		name, ok := servedName(mux.Vars(r)["name"])
		if !ok {
			notFound(w, r)
			return
		}
		f, err := us.dest.Open(name)
		if err != nil {
			notFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			notFound(w, r)
			return
		}
		h := w.Header()
		ctype := contentType(name)
		h.Set("Content-Type", ctype)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", sandbox)
		disposition := "attachment"
		if base, _, _ := mime.ParseMediaType(ctype); inline[base] {
			disposition = "inline"
		}
		h.Set("Content-Disposition", attachment(disposition, path.Base(name)))
		http.ServeContent(s.progressDeadline(w), r, "", st.ModTime(), f)
	})
}

// servedName is the path below a destination that a /files URL names: one or more
// segments (an upload token's folders, then the name), each escaped on its own. An
// empty segment, a dot-segment or a dot-file (the placer's temp files, never placed
// names) names nothing, and neither does an encoded slash.
func servedName(raw string) (string, bool) {
	segs := strings.Split(raw, "/")
	for i, seg := range segs {
		s, err := url.PathUnescape(seg)
		if err != nil || s == "" || strings.HasPrefix(s, ".") || strings.ContainsAny(s, `/\`) {
			return "", false
		}
		segs[i] = s
	}
	return strings.Join(segs, "/"), true
}

func contentType(name string) string {
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(name))); t != "" {
		return t
	}
	return "application/octet-stream"
}
