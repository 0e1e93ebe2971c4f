// Package placement moves finished uploads into a set's destination under a name that
// no other file has, without ever replacing or exposing a partial file.
package placement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/uploadsets/uploadsets/internal/durable"
)

// Placer is the seam between finishing an upload and where its file ends up: local
// disk today, an object store later.
type Placer interface {
	// Place moves the finished data at src to the first free name of names and
	// returns that name. It is idempotent: if a previous attempt for the same src
	// already placed it (and crashed before recording that), it returns that name.
	Place(ctx context.Context, src string, names iter.Seq[string]) (string, error)
}

// ErrNoFreeName is returned when every candidate name is taken.
var ErrNoFreeName = errors.New("placement: no free name")

// Dir places files into one local directory.
type Dir struct {
	path string
	root *os.Root
}

// OpenDir opens (creating if needed) a destination directory.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, root: root}, nil
}

// Root is the destination, for reading placed files without leaving it.
func (d *Dir) Root() *os.Root { return d.root }

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Place hard-links src to the first free candidate, which reserves the name and makes
// the complete file appear in one step (link never replaces an existing name), then
// syncs the directory. Across filesystems (EXDEV) it copies into a hidden temp file
// inside the destination, syncs it, and links that into place instead.
//
// The caller removes src after recording the result; until then a repeated Place finds
// the link it already made (same inode) instead of making a second copy.
func (d *Dir) Place(ctx context.Context, src string, names iter.Seq[string]) (string, error) {
	from := src
	var tmp string
	for name := range names {
		if !safeComponent(name) {
			return "", fmt.Errorf("placement: unsafe name %q", name)
		}
		// os.Root has no link from outside the root; the name is one checked
		// component and link(2) never follows a symlink at the new name.
		err := os.Link(from, filepath.Join(d.path, name))
		if errors.Is(err, syscall.EXDEV) && tmp == "" {
			if tmp, err = d.copyIn(src); err != nil {
				return "", err
			}
			from = filepath.Join(d.path, tmp)
			err = os.Link(from, filepath.Join(d.path, name))
		}
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrExist):
			if d.sameFile(from, name) {
				break
			}
			continue
		default:
			d.dropTemp(tmp)
			return "", err
		}
		d.dropTemp(tmp)
		return name, durable.SyncDir(d.path)
	}
	d.dropTemp(tmp)
	return "", ErrNoFreeName
}

func (d *Dir) sameFile(src, name string) bool {
	a, err := os.Stat(src)
	if err != nil {
		return false
	}
	b, err := d.root.Lstat(name)
	return err == nil && os.SameFile(a, b)
}

// copyIn copies src to a temp file in the destination. Its name starts with a dot,
// which no placed name does and the file server refuses to serve.
func (d *Dir) copyIn(src string) (name string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	name = ".uploadsets-" + filepath.Base(src) + ".part"
	out, err := d.root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.root.Remove(name)
		return "", err
	}
	return name, nil
}

func (d *Dir) dropTemp(name string) {
	if name != "" {
		d.root.Remove(name)
	}
}

func safeComponent(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, `/\`+"\x00") && filepath.IsLocal(name)
}
