package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/diskstore"
	"github.com/uploadsets/uploadsets/web"
)

// idPattern admits only IDs the store hands out (128 random bits, hex), so a malformed
// or hostile ID never reaches the store.
const idPattern = "{id:[0-9a-f]{32}}"

func (s *Server) routes() *mux.Router {
	// Match the path as sent: no cleaning redirects and no decoding of %2F, so that
	// a path with dot-segments or encoded slashes matches no route and is a plain 404.
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	for _, us := range s.order {
		prefix := "/uploads/" + us.set.Name + "/"
		tus := us.tus
		// tusd's Middleware runs first: it answers OPTIONS and CORS, checks
		// Tus-Resumable and applies X-HTTP-Method-Override, so the method
		// switch below sees the method the client meant.
		collection := advertise(us.set.MaxSize, tus.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				methodNotAllowed(w, "POST, OPTIONS")
				return
			}
			if r.Header.Get("Upload-Defer-Length") != "" {
				// Not advertised; tusd would answer 501, which clients retry.
				writeTusError(w, deferredLength(us.set.Name))
				return
			}
			tus.PostFile(w, r)
		})))
		member := tus.Middleware(http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodHead:
				placedHeaders(w, us, r.URL.Path)
				tus.HeadFile(w, r)
			case http.MethodPatch:
				tus.PatchFile(w, r)
			case http.MethodDelete:
				tus.DelFile(w, r)
			case http.MethodGet:
				tus.GetFile(w, r)
			default:
				methodNotAllowed(w, "HEAD, PATCH, DELETE, GET, OPTIONS")
			}
		})))
		collection = s.tusHeaders(us, collection)
		member = s.tusHeaders(us, member)
		r.Handle(prefix, collection)
		r.Handle(strings.TrimSuffix(prefix, "/"), collection)
		r.Handle(prefix+idPattern, advertise(us.set.MaxSize, member))
		if us.set.URL == "" {
			r.Handle("/files/"+us.set.Name+"/{name}", s.serveFile(us)).Methods(http.MethodGet, http.MethodHead)
		}
	}
	r.HandleFunc("/api/sets", s.apiSets).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/uploads/{set}/"+idPattern, s.apiUpload).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	}).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	page := web.Handler()
	r.PathPrefix("/assets/").Handler(page).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/", page).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(notFound)
	return r
}

// advertise adds the set's limit to OPTIONS: tusd only sends Tus-Max-Size when it
// enforces the limit itself, and here the creation hook does.
func advertise(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Tus-Max-Size", strconv.FormatInt(max, 10))
		}
		next.ServeHTTP(w, r)
	})
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not found", http.StatusNotFound)
}

// placedHeaders tells a client that lost the completing response, and resumes with a
// HEAD, where its file went. Placed is a final state, so reading it outside tusd's lock
// is safe.
func placedHeaders(w http.ResponseWriter, us *uploadSet, id string) {
	rec, err := us.store.Record(id)
	if err != nil || rec.State != diskstore.Placed {
		return
	}
	w.Header().Set("Upload-File-Name", url.PathEscape(rec.Name))
	w.Header().Set("Upload-File-Url", rec.URL)
}

func deferredLength(set string) handler.Error {
	return handler.NewError("ERR_UPLOAD_LENGTH_REQUIRED", fmt.Sprintf(
		"set %q needs Upload-Length when the upload is created, so that its size rule is checked before any byte; deferred length is not offered", set),
		http.StatusBadRequest)
}

func writeTusError(w http.ResponseWriter, e handler.Error) {
	for k, v := range e.HTTPResponse.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(e.HTTPResponse.StatusCode)
	w.Write([]byte(e.HTTPResponse.Body))
}
