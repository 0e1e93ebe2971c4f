package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

// setInfo is a set's public policy, what a client needs to upload to it.
type setInfo struct {
	Name         string   `json:"name"`
	Endpoint     string   `json:"endpoint"`
	Extensions   []string `json:"extensions"`
	AnyExtension bool     `json:"any_extension"`
	Excluded     []string `json:"excluded"`
	MaxSize      int64    `json:"max_size"`
	URL          string   `json:"url"`
	Naming       string   `json:"naming"`
	Auth         bool     `json:"auth"` // uploads need an upload token (Authorization: Bearer)
}

func (s *instance) apiSets(w http.ResponseWriter, r *http.Request) {
	base := s.baseURL(r)
	out := struct {
		Sets []setInfo `json:"sets"`
	}{Sets: []setInfo{}}
	for _, us := range s.order {
		info := setInfo{
			Name:         us.set.Name,
			Endpoint:     base + "/uploads/" + us.set.Name + "/",
			AnyExtension: us.set.Extensions.Any(),
			Extensions:   []string{},
			Excluded:     []string{},
			MaxSize:      us.set.MaxSize,
			URL:          us.hooks.FileURL(base, ""),
			Naming:       string(us.set.Naming),
			Auth:         us.verifier != nil,
		}
		if info.AnyExtension {
			info.Excluded = us.set.Extensions.List()
		} else {
			info.Extensions = us.set.Extensions.List()
		}
		out.Sets = append(out.Sets, info)
	}
	writeJSON(w, http.StatusOK, out)
}

// uploadInfo is one upload's state, for a client that lost the final response or
// wants to show progress from elsewhere.
type uploadInfo struct {
	ID     string `json:"id"`
	Set    string `json:"set"`
	State  string `json:"state"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Name   string `json:"name"`
	URL    string `json:"url"`
	Reason string `json:"reason,omitempty"`
	// Thumbnails are the URLs of a placed image's thumbnails, by label.
	Thumbnails map[string]string `json:"thumbnails,omitempty"`
}

func (s *instance) apiUpload(w http.ResponseWriter, r *http.Request) {
	us := s.set(r)
	if us == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such set"})
		return
	}
	if us.verifier != nil {
		if _, err := s.check(r, us, mux.Vars(r)["id"]); err != nil {
			var he handler.Error
			errors.As(err, &he)
			for k, v := range he.HTTPResponse.Header {
				w.Header().Set(k, v)
			}
			writeJSON(w, he.HTTPResponse.StatusCode, map[string]string{"error": he.ErrorCode, "message": he.Message})
			return
		}
	}
	rec, err := us.store.Record(mux.Vars(r)["id"])
	if errors.Is(err, handler.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such upload"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		return
	}
	// The offset HEAD reports, so that the two never disagree on how much is here.
	info := uploadInfo{ID: rec.ID, Set: us.set.Name, State: "uploading", Offset: rec.ReportedOffset(), Size: rec.Size}
	switch rec.State {
	case uploads.Placed:
		info.State, info.Name, info.URL = "complete", rec.Name, us.hooks.FileURL(s.baseURL(r), rec.Name)
		info.Thumbnails = thumbURLs(us, s.baseURL(r), rec.Thumbs)
	case uploads.Rejected:
		info.State, info.Reason = "rejected", rec.Reason
	}
	writeJSON(w, http.StatusOK, info)
}

// apiPreflight lets apps on other origins send their upload token to the status API.
func apiPreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD")
	h.Set("Access-Control-Allow-Headers", "Authorization")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	// The API is public policy and per-upload state keyed by an unguessable ID;
	// apps on other origins read it after a lost response.
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
