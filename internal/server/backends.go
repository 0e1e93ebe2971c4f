package server

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/store/disk"
	"github.com/uploadsets/uploadsets/internal/store/placement"
	"github.com/uploadsets/uploadsets/internal/store/s3dest"
	"github.com/uploadsets/uploadsets/internal/store/s3uploads"
	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/sets"
)

// openBackends opens where a set's uploads and files live: on local disk, or in S3
// when data_dir is there (the config checks that destinations follow it). A set's
// store outlives reloads (one janitor per data directory, and its uploads in
// progress); its destination is kept while the set's destination and modes stay the
// same.
func (s *Server) openBackends(cfg *sets.Config, set *sets.Set, prev *uploadSet, log hclog.Logger) (store.Uploads, store.Destination, error) {
	if cfg.DataDir.IsS3() {
		return s.openS3(cfg, set, prev, log)
	}
	dataDir := filepath.Join(cfg.DataDir.Path, set.Name)
	opts := disk.Options{
		Dir: dataDir, Records: s.records, Set: set.Name, Expire: set.ExpireAfter, FileMode: set.FileMode, MaxSize: set.MaxSize, Log: log,
		Changed: s.storeChanges(set.Name),
	}
	ups := s.stores[set.Name]
	if ups == nil {
		var err error
		if ups, err = disk.New(opts); err != nil {
			return nil, nil, fmt.Errorf("data directory: %w", err)
		}
		s.stores[set.Name] = ups
	} else {
		ups.Retune(opts)
	}
	if prev != nil && prev.set.Destination == set.Destination && prev.set.FileMode == set.FileMode && prev.set.DirMode == set.DirMode {
		return ups, prev.dest, nil
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
	return ups, dest, nil
}

// openS3 opens a set's uploads under <data_dir>/<set>/ and its destination, with the
// destination's name reservations under <data_dir>/.names/<set>/ (a set's name never
// begins with a dot, so no set's uploads are there, and no client reads them).
func (s *Server) openS3(cfg *sets.Config, set *sets.Set, prev *uploadSet, log hclog.Logger) (store.Uploads, store.Destination, error) {
	opts := s3uploads.Options{
		Set: set.Name, Expire: set.ExpireAfter, MaxSize: set.MaxSize, Log: log,
		Changed:  s.storeChanges(set.Name),
		TempDir:  scratchDir(set),
		Checksum: uploads.ChecksumOf,
		Locker:   s.lockerOf(set.Name),
	}
	ups := s.s3stores[set.Name]
	if ups == nil {
		if err := os.MkdirAll(opts.TempDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("temporary directory: %w", err)
		}
		var err error
		if ups, err = s3uploads.New(s.s3, cfg.DataDir.Bucket, cfg.DataDir.Prefix+set.Name+"/", opts); err != nil {
			return nil, nil, fmt.Errorf("data_dir: %w", err)
		}
		s.s3stores[set.Name] = ups
	} else {
		ups.Retune(opts)
	}
	if prev != nil && prev.set.Destination == set.Destination {
		return ups, prev.dest, nil
	}
	dest, err := s3dest.Open(s.s3, set.Destination.Bucket, set.Destination.Prefix, s3dest.Options{
		Logger:       log,
		Reservations: s3dest.Location{Bucket: cfg.DataDir.Bucket, Prefix: cfg.DataDir.Prefix + ".names/" + set.Name + "/"},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("destination: %w", err)
	}
	s.dests = append(s.dests, dest)
	return ups, dest, nil
}

// lockerOf is a set's lock, which outlives its reloads: two requests for one upload
// must meet at one lock whichever config admitted them. It hands off promptly: a new
// request for an upload makes the holder stop at once (tusd's filelocker would poll
// every 2 s), in this process or, with Redis, on whichever instance holds it.
func (s *Server) lockerOf(set string) handler.Locker {
	l := s.lockers[set]
	if l == nil {
		hl := handoffLocker{inner: memorylocker.New()}
		if s.shared != nil {
			hl.inner = s.shared.locker // every instance's requests meet there
			hl.failed = s.shared.lockFailed
		}
		l = hl
		s.lockers[set] = l
	}
	return l
}

// scratchDir is a set's local directory for what passes through this instance of
// uploads kept in S3: s3store's parts, checksummed bodies until verified, an image's
// local copy and outputs.
func scratchDir(set *sets.Set) string {
	return filepath.Join(os.TempDir(), "uploadsets-"+set.Name)
}
