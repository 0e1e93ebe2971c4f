package server

import (
	"context"
	"net/http"
	"time"
)

// janitor sweeps every set's store until ctx is done, so abandoned uploads do not fill
// the disk. Placed files are never its business.
func (s *Server) janitor(ctx context.Context) {
	interval := time.Minute
	for _, us := range s.order {
		interval = min(interval, us.store.Interval())
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, us := range s.order {
			if _, err := us.store.Sweep(); err != nil {
				s.log.Error("SweepFailed", "set", us.set.Name, "error", err)
			}
		}
	}
}

// expires tells the client of an unfinished upload when it will be removed if it
// makes no more progress (tus's Upload-Expires): on creation and on every PATCH, since
// each byte moves the date. A response that completes the upload drops it again.
func expires(after time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPatch {
			w.Header().Set("Upload-Expires", time.Now().Add(after).UTC().Format(http.TimeFormat))
			w = &expiresWriter{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

type expiresWriter struct{ http.ResponseWriter }

func (w *expiresWriter) WriteHeader(code int) {
	if h := w.Header(); h.Get("Upload-File-Name") != "" || code >= 400 {
		h.Del("Upload-Expires")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets tusd reach the connection's deadlines through http.ResponseController:
// without it the network timeout would silently not apply.
func (w *expiresWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
