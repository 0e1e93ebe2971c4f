package server

import (
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gorilla/mux"
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
		name, err := url.PathUnescape(mux.Vars(r)["name"])
		// Dot-files are the placer's temp files, never placed names.
		if err != nil || name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
			notFound(w, r)
			return
		}
		f, err := us.dest.Root().Open(name)
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
		h.Set("Content-Disposition", attachment(disposition, name))
		http.ServeContent(s.progressDeadline(w), r, "", st.ModTime(), f)
	})
}

func contentType(name string) string {
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(name))); t != "" {
		return t
	}
	return "application/octet-stream"
}
