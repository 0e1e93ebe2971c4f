package server

import (
	"net/http"
	"strconv"
	"time"
)

// tusHeaders adds what tusd leaves out of its upload responses, at the moment the
// status is known:
//   - Upload-Expires (tus's expiration extension) on creation and on every PATCH of
//     an unfinished upload, since each byte moves the date; not on a response that
//     completes the upload or refuses it;
//   - Upload-Offset on a 409, so a client with the wrong offset learns the right one
//     without another round trip.
//
// It also makes POST and PATCH requests cuttable (see handoff.go): by the lock hand-off,
// and by shutdown.
func (s *Server) tusHeaders(us *uploadSet, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPatch {
			next.ServeHTTP(w, r)
			return
		}
		r, c := withCutter(w, r)
		s.inFlight.add(c)
		defer s.inFlight.remove(c)
		expires := time.Now().Add(us.set.ExpireAfter).UTC().Format(http.TimeFormat)
		next.ServeHTTP(&tusWriter{ResponseWriter: w, before: func(h http.Header, code int) {
			switch {
			case code == http.StatusConflict && r.Method == http.MethodPatch:
				if offset, err := us.store.Offset(lastSegment(r.URL.Path)); err == nil {
					h.Set("Upload-Offset", strconv.FormatInt(offset, 10))
				}
			case code < 300 && h.Get("Upload-File-Name") == "":
				h.Set("Upload-Expires", expires)
			}
		}}, r)
	})
}

// tusWriter calls before just before the status line is written.
type tusWriter struct {
	http.ResponseWriter
	before func(http.Header, int)
	done   bool
}

func (w *tusWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		w.before(w.Header(), code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tusWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets tusd reach the connection's deadlines through http.ResponseController:
// without it the network timeout would silently not apply.
func (w *tusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func lastSegment(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}
