package server

import (
	"context"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

// placePending places uploads that had received every byte but were not placed when
// the server last stopped (a crash between the last byte and placement). Placement is
// idempotent, so an upload that was placed but not yet recorded as such is found
// where it went rather than placed twice. Uploads whose client was told that
// placement failed are left to the client's retry (see uploads.Failed).
func (s *instance) placePending(ctx context.Context, sets []*uploadSet) {
	for _, us := range sets {
		// No placement is running yet, so every temp file is a crash's leftover.
		if err := us.dest.RemoveTemps(); err != nil {
			s.log.Warn("RemoveTempsFailed", "set", us.set.Name, "error", err)
		}
		ids, err := us.store.IDs()
		if err != nil {
			s.log.Error("RecoveryFailed", "set", us.set.Name, "error", err)
			continue
		}
		for _, id := range ids {
			rec, err := us.store.Record(id)
			if err != nil || rec.State != uploads.Receiving || !rec.Complete() {
				continue
			}
			name, err := us.hooks.Finish(ctx, id)
			if err != nil {
				s.log.Error("RecoveryFailed", "set", us.set.Name, "id", id, "error", err)
				continue
			}
			s.log.Info("UploadRecovered", "set", us.set.Name, "id", id, "name", name)
		}
	}
}
