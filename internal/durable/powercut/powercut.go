// Package powercut simulates a power cut, for tests. It watches every sync the server
// makes (durable.Trace) and builds, at any moment, the file tree a machine would find
// if it lost power then: only what a completed sync covered. A directory's entries
// survive as its last completed sync saw them (an entry made since is lost); a file's
// bytes survive up to the size its last completed sync saw (bytes written since are
// lost, and a file never synced comes back empty). Files that keep their own
// durability (a database that syncs its commits) are trusted through a snapshot.
//
// kill -9 cannot test this: the page cache survives a killed process, so every write
// looks durable whether it was synced or not.
package powercut

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/uploadsets/uploadsets/internal/durable"
)

// Sim is one simulation over the tree under a root directory.
type Sim struct {
	root string

	mu      sync.Mutex // held by Cut: no sync completes while an image is built
	data    map[uint64]int64
	dirs    map[string][]dirent
	open    map[uint64]*os.File // a descriptor of every inode seen, to read it once its names are gone
	trusted map[string]func(io.Writer) error
}

type dirent struct {
	name string
	ino  uint64
	dir  bool
}

// Start traces syncs until the test ends. root must exist; its entries as they are
// now count as durable (the test made them).
func Start(t testing.TB, root string) *Sim {
	t.Helper()
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sim{root: root, data: map[uint64]int64{}, dirs: map[string][]dirent{}, open: map[uint64]*os.File{}, trusted: map[string]func(io.Writer) error{}}
	entries, err := s.list(root)
	if err != nil {
		t.Fatal(err)
	}
	s.dirs[root] = entries
	for _, e := range entries {
		if !e.dir {
			s.data[e.ino] = s.size(e.ino)
		}
	}
	stop := durable.Trace(s)
	t.Cleanup(func() {
		stop()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, f := range s.open {
			f.Close()
		}
	})
	return s
}

// Trust says that the file at path is durable by its own means: in an image it holds
// what snapshot writes, if a synced directory entry names it.
func (s *Sim) Trust(path string, snapshot func(io.Writer) error) {
	path, _ = filepath.Abs(path)
	s.mu.Lock()
	s.trusted[path] = snapshot
	s.mu.Unlock()
}

// Syncing implements durable.Tracer.
func (s *Sim) Syncing(f *os.File, isDir bool) func(error) {
	if isDir {
		path, _ := filepath.Abs(f.Name())
		entries, err := s.list(path)
		if err != nil || !s.inside(path) {
			return func(error) {}
		}
		return func(err error) {
			if err == nil {
				s.mu.Lock()
				s.dirs[path] = entries
				s.mu.Unlock()
			}
		}
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil {
		return func(error) {}
	}
	s.keep(st.Ino, func() (*os.File, error) {
		// A new read-only descriptor of the same inode, even if no name is left
		// to it: f may be open for writing only, and a dup of it could not read
		// the bytes back into an image.
		return os.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	})
	return func(err error) {
		if err == nil {
			s.mu.Lock()
			s.data[st.Ino] = max(s.data[st.Ino], st.Size)
			s.mu.Unlock()
		}
	}
}

func (s *Sim) inside(path string) bool {
	rel, err := filepath.Rel(s.root, path)
	return err == nil && filepath.IsLocal(rel) || path == s.root
}

// list reads a directory's entries and keeps a descriptor of each file in it.
func (s *Sim) list(dir string) ([]dirent, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var entries []dirent
	for _, de := range des {
		path := filepath.Join(dir, de.Name())
		var st syscall.Stat_t
		if syscall.Lstat(path, &st) != nil {
			continue // removed meanwhile
		}
		e := dirent{name: de.Name(), ino: st.Ino, dir: de.IsDir()}
		if !e.dir {
			ok := s.keep(st.Ino, func() (*os.File, error) { return os.Open(path) })
			if !ok {
				continue
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func (s *Sim) keep(ino uint64, open func() (*os.File, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[ino] != nil {
		return true
	}
	f, err := open()
	if err != nil {
		return false
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || st.Ino != ino {
		f.Close() // replaced between the stat and the open
		return false
	}
	s.open[ino] = f
	return true
}

func (s *Sim) size(ino uint64) int64 {
	if f := s.open[ino]; f != nil {
		if st, err := f.Stat(); err == nil {
			return st.Size()
		}
	}
	return 0
}

// Cut builds the image of the tree as a power cut now would leave it, in a new
// temporary directory, and returns that directory. during runs while no sync can
// complete: whatever the test reads there (what its clients were told) is consistent
// with the image.
func (s *Sim) Cut(t testing.TB, during func()) string {
	t.Helper()
	img := t.TempDir()
	s.mu.Lock()
	defer s.mu.Unlock()
	if during != nil {
		during()
	}
	linked := map[uint64]string{}
	var build func(src, dst string) error
	build = func(src, dst string) error {
		for _, e := range s.dirs[src] {
			from, to := filepath.Join(src, e.name), filepath.Join(dst, e.name)
			if e.dir {
				if err := os.Mkdir(to, 0o755); err != nil {
					return err
				}
				if err := build(from, to); err != nil {
					return err
				}
				continue
			}
			if snap := s.trusted[from]; snap != nil {
				var buf bytes.Buffer
				if err := snap(&buf); err != nil {
					return err
				}
				if err := os.WriteFile(to, buf.Bytes(), 0o600); err != nil {
					return err
				}
				continue
			}
			if first, ok := linked[e.ino]; ok {
				if err := os.Link(first, to); err != nil {
					return err
				}
				continue
			}
			content := make([]byte, s.data[e.ino])
			if f := s.open[e.ino]; f != nil {
				n, _ := f.ReadAt(content, 0)
				content = content[:n]
			}
			if err := os.WriteFile(to, content, 0o644); err != nil {
				return err
			}
			linked[e.ino] = to
		}
		return nil
	}
	if err := build(s.root, img); err != nil {
		t.Fatal(err)
	}
	return img
}
