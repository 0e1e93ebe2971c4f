package s3uploads

import (
	"context"
	"sync"
)

// The PATCH that completes an upload reads its record under the upload's lock, and
// its finish hook would read it again a moment later, still under that lock: one
// request to S3 for what the request holds already. So the request keeps the record
// it assembled the upload with, in a room its context carries (WithRequest), and
// the hook reads it there (RecordIn). The room goes with the request: another
// request, here or on another instance, reads the bucket.

type requestKey struct{}

// request is what one request assembled, by store and upload.
type request struct {
	mu        sync.Mutex
	assembled map[requestEntry]versioned
}

type requestEntry struct {
	store *Store
	id    string
}

// WithRequest returns a context in which the store keeps, for the rest of one
// request, the record of an upload the request assembles (see RecordIn). It must be
// given before tusd makes the request's context, from which the store's and the
// hooks' contexts are derived.
func WithRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{})
}

// keepAssembled notes, in the request of ctx if it has one, the record v that the
// request assembled the upload with.
func (s *Store) keepAssembled(ctx context.Context, id string, v versioned) {
	r, ok := ctx.Value(requestKey{}).(*request)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.assembled == nil {
		r.assembled = map[requestEntry]versioned{}
	}
	r.assembled[requestEntry{s, id}] = v
}

// RecordIn is Record as the request of ctx sees it. An upload the request assembled
// is the record the request holds, read at its start under the upload's lock and
// not changed since, as far as this instance knows: its latest write of the record
// is still that version (a change of state since, as the hooks make, is read from
// the bucket). Any other is read from the bucket.
func (s *Store) RecordIn(ctx context.Context, id string) (Record, error) {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		r.mu.Lock()
		v, found := r.assembled[requestEntry{s, id}]
		r.mu.Unlock()
		if known, ok := s.recall(id); found && ok && known.etag == v.etag {
			rec := v.obj.Record
			rec.ID, rec.Offset, rec.Activity = id, rec.Size, v.obj.Active
			return rec, nil
		}
	}
	return s.Record(id)
}
