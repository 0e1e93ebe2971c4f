package server

import (
	"context"
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
