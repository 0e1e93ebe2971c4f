package server

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/store/disk"
	"github.com/uploadsets/uploadsets/internal/store/placement"
	"github.com/uploadsets/uploadsets/sets"
)

// openBackends opens where a set's uploads and files live. A set's store outlives
// reloads (one janitor per data directory, and its uploads in progress); its
// destination is kept while the set's destination and modes stay the same.
func (s *Server) openBackends(cfg *sets.Config, set *sets.Set, prev *uploadSet, log hclog.Logger) (store.Uploads, store.Destination, error) {
	dataDir := filepath.Join(cfg.DataDir.Path, set.Name)
	opts := disk.Options{
		Dir: dataDir, Records: s.records, Set: set.Name, Expire: set.ExpireAfter, FileMode: set.FileMode, MaxSize: set.MaxSize, Log: log,
		Changed: s.storeChanges(set.Name),
	}
	uploads := s.stores[set.Name]
	if uploads == nil {
		var err error
		if uploads, err = disk.New(opts); err != nil {
			return nil, nil, fmt.Errorf("data directory: %w", err)
		}
		s.stores[set.Name] = uploads
	} else {
		uploads.Retune(opts)
	}
	if prev != nil && prev.set.Destination == set.Destination && prev.set.FileMode == set.FileMode && prev.set.DirMode == set.DirMode {
		return uploads, prev.dest, nil
	}
	dest, err := placement.OpenDir(set.Destination.Path, set.FileMode, set.DirMode)
	if err != nil {
		return nil, nil, fmt.Errorf("destination: %w", err)
	}
	s.dests = append(s.dests, dest)
	if links, err := dest.Links(dataDir); err == nil && !links {
		log.Warn("PlacementCopies", "destination", set.Destination, "data_dir", cfg.DataDir,
			"why", "different file systems: every finished upload is copied into place instead of linked; put both on one file system")
	}
	return uploads, dest, nil
}
