// Package placement is a set's destination on local disk (a store.Destination): it
// moves finished uploads into a directory under a name that no other file has, without
// ever replacing, exposing or rewriting a file, and opens them for serving.
package placement

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/text/cases"

	"github.com/uploadsets/uploadsets/internal/crashpoint"
	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/store"
)

// ErrNoFreeName is returned when every candidate name is taken.
var ErrNoFreeName = errors.New("placement: no free name")

// Request is one upload to place; its Src is a local file, linked into place on the
// destination's file system and copied from anywhere else.
type Request = store.Request

// Dir places files into one local directory.
type Dir struct {
	path     string
	root     *os.Root
	fileMode os.FileMode
	dirMode  os.FileMode // of the folders it makes
	dev      uint64      // the destination's file system

	// Names are reserved case-insensitively, so that a destination can be copied to
	// macOS or Windows, where CAT.PNG and cat.png are one file. The file system
	// cannot check that for us; taken holds the folded names of the destination
	// (read once, then kept up to date), and mu makes checking it and linking one
	// step. It assumes this process is the only one placing files here, as it is
	// for a local destination.
	mu     sync.Mutex
	taken  map[string]struct{} // folded paths relative to the destination
	loaded map[string]bool     // the folders whose names are in taken
}

// OpenDir opens (creating if needed, with dirMode) a destination whose placed files
// get fileMode.
func OpenDir(path string, fileMode, dirMode os.FileMode) (*Dir, error) {
	if err := durable.MkdirAll(path, dirMode); err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, root: root, fileMode: fileMode, dirMode: dirMode, dev: st.Dev,
		taken: map[string]struct{}{}, loaded: map[string]bool{}}, nil
}

// Root is the destination, for reading placed files without leaving it.
func (d *Dir) Root() *os.Root { return d.root }

// Open opens a placed file, through the destination's os.Root so that no name can
// reach outside it; anything but a regular file is not found.
func (d *Dir) Open(name string) (store.File, error) {
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Links reports whether files in dir are placed by a hard link (one file system), or
// by a copy.
func (d *Dir) Links(dir string) (bool, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false, err
	}
	return st.Dev == d.dev, nil
}

// Place puts req.Src.Path at the first free candidate name and returns that name. It is
// idempotent: an earlier attempt's file, placed before a crash or a failure that
// followed it, is found and its name returned, never placed a second time. When the
// name is returned with an error, the file is there but the step after it failed;
// the caller decides whether to Unplace it.
//
// On one file system a hard link reserves the name and makes the complete file
// appear in one step (link never replaces a name); the data file and the placed file
// are then one inode, so the store never writes to a data file once it is complete.
// Across file systems the data is copied into a hidden temp file in the destination,
// synced, its name announced through req.Intend, and linked into place the same way.
func (d *Dir) Place(req Request) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(req.Src.Path, &st); err != nil {
		return "", err
	}
	// The same on every path: a link shares the data file's mode, a copy is made
	// with it.
	if os.FileMode(st.Mode)&os.ModePerm != d.fileMode {
		if err := os.Chmod(req.Src.Path, d.fileMode); err != nil {
			return "", err
		}
	}
	names := req.Names
	if req.Folder != "" {
		for _, seg := range strings.Split(req.Folder, "/") {
			if !safeComponent(seg) {
				return "", fmt.Errorf("placement: unsafe folder %q", req.Folder)
			}
		}
		if err := d.mkdirs(req.Folder); err != nil {
			return "", err
		}
		names = func(yield func(string) bool) {
			for n := range req.Names {
				if strings.Contains(n, "/") || !yield(req.Folder+"/"+n) {
					return
				}
			}
		}
	}
	if st.Dev == d.dev {
		return d.link(req.Src.Path, names)
	}
	req.Names = names
	return d.copy(req, st.Size)
}

// mkdirs makes folder and its parents inside the destination, with dirMode exactly,
// each synced into its parent.
func (d *Dir) mkdirs(folder string) error {
	segs := strings.Split(folder, "/")
	for i := range segs {
		dir := strings.Join(segs[:i+1], "/")
		err := d.root.Mkdir(dir, d.dirMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			err = d.root.Chmod(dir, d.dirMode) // the umask applied to Mkdir's mode
		}
		if err == nil {
			err = durable.SyncDir(filepath.Join(d.path, filepath.Dir(dir)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dirOf is the directory that holds the placed path rel.
func (d *Dir) dirOf(rel string) string { return filepath.Join(d.path, path.Dir(rel)) }

// checkName accepts a placed path: one safe component, or a folder's and one.
func checkName(rel string) error {
	for _, seg := range strings.Split(rel, "/") {
		if !safeComponent(seg) {
			return fmt.Errorf("placement: unsafe name %q", rel)
		}
	}
	return nil
}

func (d *Dir) link(src string, names iter.Seq[string]) (string, error) {
	for name := range names {
		if err := checkName(name); err != nil {
			return "", err
		}
		placed, err := d.reserve(name, func() error {
			// os.Root has no link from outside the root; the name is one checked
			// component and link(2) never follows a symlink at the new name.
			return os.Link(src, filepath.Join(d.path, name))
		}, func() bool { return d.sameInode(src, name) })
		if err != nil {
			return "", err
		}
		if placed {
			return name, durable.SyncDir(d.dirOf(name))
		}
	}
	return "", ErrNoFreeName
}

// reserve makes name the file's, through place, unless a name equal to it but for
// case is taken by another file (ours reports whether a file under exactly this name
// is the one being placed, put there by an earlier attempt). It reports whether
// the name is now the file's.
func (d *Dir) reserve(name string, place func() error, ours func() bool) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.loadTaken(path.Dir(name)); err != nil {
		return false, err
	}
	key := fold(name)
	if _, taken := d.taken[key]; taken {
		return ours(), nil
	}
	err := place()
	if errors.Is(err, fs.ErrExist) {
		d.taken[key] = struct{}{} // made by someone else since we looked
		return ours(), nil
	}
	if err != nil {
		return false, err
	}
	d.taken[key] = struct{}{}
	return true, nil
}

// loadTaken reads the names in folder ("." for the destination itself) into taken,
// the first time a name is placed there.
func (d *Dir) loadTaken(folder string) error {
	if d.loaded[folder] {
		return nil
	}
	f, err := d.root.Open(folder)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			d.taken[fold(path.Join(folder, n))] = struct{}{}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	d.loaded[folder] = true
	return nil
}

// fold is the form two names have in common when only their case differs. A Caser
// keeps state, so each call has its own.
func fold(name string) string { return cases.Fold().String(name) }

func (d *Dir) copy(req Request, size int64) (string, error) {
	tmp := tempName(req.Src.Path)
	if req.Intended != "" && d.holds(req.Intended, req.Src.Path, size) {
		d.dropTemp(tmp) // a crash may have left it, linked to the placed file
		return req.Intended, durable.SyncDir(d.path)
	}
	if err := d.copyIn(req.Src.Path, tmp); err != nil {
		return "", err
	}
	defer d.dropTemp(tmp)
	for name := range req.Names {
		if err := checkName(name); err != nil {
			return "", err
		}
		placed, err := d.reserve(name, func() error {
			// The name is announced only when it is free, as far as can be
			// seen: the link is what reserves it.
			if _, err := d.root.Lstat(name); err == nil {
				return fs.ErrExist
			}
			if err := req.Intend(name); err != nil {
				return err
			}
			return os.Link(filepath.Join(d.path, tmp), filepath.Join(d.path, name))
		}, func() bool { return false }) // a copy of ours is found only by its intended name
		if err != nil {
			return "", err
		}
		if placed {
			err = durable.SyncDir(d.dirOf(name))
			crashpoint.At("copy-linked") // the temp copy is in place and still there
			return name, err
		}
	}
	return "", ErrNoFreeName
}

// Unplace removes a file Place returned along with an error, so that a client told
// its upload failed finds no file of it in the destination (and one that starts over
// gets no second copy). The data file is untouched: a retry places it again.
func (d *Dir) Unplace(name string) error {
	if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d.mu.Lock()
	delete(d.taken, fold(name))
	d.mu.Unlock()
	return durable.SyncDir(d.dirOf(name))
}

// RemoveTemps removes the temp files of copies a crash interrupted. Run it only when
// no placement is in progress (at start).
func (d *Dir) RemoveTemps() error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && strings.HasSuffix(e.Name(), ".part") {
			d.dropTemp(e.Name())
		}
	}
	return nil
}

func (d *Dir) sameInode(src, name string) bool {
	a, err := os.Stat(src)
	if err != nil {
		return false
	}
	b, err := d.root.Lstat(name)
	return err == nil && os.SameFile(a, b)
}

// holds reports whether name is a copy of src: same size, same bytes.
func (d *Dir) holds(name, src string, size int64) bool {
	st, err := d.root.Lstat(name)
	if err != nil || !st.Mode().IsRegular() || st.Size() != size {
		return false
	}
	a, err := durable.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer a.Close()
	b, err := d.root.Open(name)
	if err != nil {
		return false
	}
	defer b.Close()
	return sameBytes(a, b)
}

func sameBytes(a, b io.Reader) bool {
	bufA, bufB := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false
		}
		if errA != nil || errB != nil {
			return (errA == io.EOF || errA == io.ErrUnexpectedEOF) && (errB == io.EOF || errB == io.ErrUnexpectedEOF)
		}
	}
}

// Temp files start with a dot, which no placed name does and the file server refuses
// to serve.
const tempPrefix = ".uploadsets-"

func tempName(src string) string { return tempPrefix + filepath.Base(src) + ".part" }

// copyIn copies src to the temp file name in the destination and syncs it. A temp file
// of an earlier attempt may be linked to a placed file: it is unlinked, never opened
// for writing, so that no write can reach a placed file.
func (d *Dir) copyIn(src, name string) (err error) {
	in, err := durable.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := d.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, d.fileMode)
	if err != nil {
		return err
	}
	err = out.Chmod(d.fileMode) // the umask applied to OpenFile's mode
	if err == nil {
		_, err = io.Copy(out, in)
	}
	if err == nil {
		err = durable.SyncData(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.root.Remove(name)
		return err
	}
	return nil
}

func (d *Dir) dropTemp(name string) { d.root.Remove(name) }

func safeComponent(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, `/\`+"\x00") && filepath.IsLocal(name)
}
