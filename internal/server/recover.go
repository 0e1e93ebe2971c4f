package server

import (
	"context"

	"github.com/uploadsets/uploadsets/internal/diskstore"
)

// placePending places uploads that had received every byte but were not placed when
// the server last stopped (a crash between the last byte and placement). Placement is
// idempotent, so an upload that was placed but not yet recorded as such is found
// where it went rather than placed twice.
func (s *Server) placePending(ctx context.Context) {
	for _, us := range s.order {
		ids, err := us.store.IDs()
		if err != nil {
			s.log.Error("RecoveryFailed", "set", us.set.Name, "error", err)
			continue
		}
		for _, id := range ids {
			rec, err := us.store.Record(id)
			if err != nil || rec.State != diskstore.Receiving || !rec.Complete() {
				continue
			}
			name, _, err := us.hooks.Finish(ctx, id, s.cfg.PublicURL)
			if err != nil {
				s.log.Error("RecoveryFailed", "set", us.set.Name, "id", id, "error", err)
				continue
			}
			s.log.Info("UploadRecovered", "set", us.set.Name, "id", id, "name", name)
		}
	}
}
