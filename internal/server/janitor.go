package server

import (
	"context"
	"time"
)

// janitor sweeps every set's store until ctx is done, so abandoned uploads do not fill
// the disk; the sets are those of the config current at each sweep, and those a reload
// retired. Placed files are never its business.
func (s *Server) janitor(ctx context.Context) {
	for {
		interval := time.Minute
		sets := s.current.Load().all()
		for _, us := range sets {
			interval = min(interval, us.store.Interval())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		for _, us := range sets {
			if _, err := us.store.Sweep(); err != nil {
				s.log.Error("SweepFailed", "set", us.set.Name, "error", err)
			}
		}
	}
}
