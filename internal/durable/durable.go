// Package durable holds the file-system steps that both the store and placement need:
// a rename or link is only durable once its directory is synced, and a directory the
// server creates gets exactly the configured mode.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// SyncDir makes the entries created, renamed or removed in dir before the call survive
// a power cut. Concurrent callers for one directory share fsyncs, as a database's log
// shares commits: one fsync of a directory covers every entry changed before it
// started, so a caller waits for the first fsync that starts after its call (running
// it itself when none is running) and is told that fsync's outcome. Under a burst of
// small uploads in one directory, that is one fsync for many of them.
func SyncDir(dir string) error {
	dirsMu.Lock()
	g := dirs[dir]
	if g == nil {
		g = &group{}
		g.cond = sync.NewCond(&g.mu)
		dirs[dir] = g
	}
	dirsMu.Unlock()
	return g.sync(dir)
}

var (
	dirsMu sync.Mutex
	dirs   = map[string]*group{}
)

// group is the fsyncs of one directory: started and done count them, err is the
// outcome of the last one done.
type group struct {
	mu            sync.Mutex
	cond          *sync.Cond
	started, done uint64
	busy          bool
	err           error
}

func (g *group) sync(dir string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	// The fsync running now may have begun before this caller's change; the next
	// one to start cannot have.
	need := g.started + 1
	for g.done < need {
		if g.busy {
			g.cond.Wait()
			continue
		}
		g.busy = true
		g.started++
		n := g.started
		g.mu.Unlock()
		err := fsync(dir)
		g.mu.Lock()
		g.busy, g.done, g.err = false, n, err
		g.cond.Broadcast()
	}
	return g.err
}

// fsync is a variable for tests that count fsyncs.
var fsync = fsyncDir

func fsyncDir(dir string) error {
	d, err := OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	done := traced(d, true)
	err = d.Sync()
	done(err)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenFile is os.OpenFile for regular files and directories, at a fraction of its
// system calls: os.OpenFile offers every descriptor to the runtime's poller, which
// costs four fcntl calls and a refused epoll_ctl, five calls on every open of a file
// that can never be polled. A small upload opens half a dozen.
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// SyncData makes f's bytes and size survive a power cut (fdatasync: the timestamps
// may lag, which nothing reads back as a fact).
func SyncData(f *os.File) error {
	done := traced(f, false)
	err := unix.Fdatasync(int(f.Fd()))
	done(err)
	return err
}

// A Tracer watches the syncs that make the server's writes durable, for tests that
// simulate a power cut (package powercut): a sync covers what the file or directory
// held when it started, and that survives a cut once done is called with nil.
type Tracer interface {
	Syncing(f *os.File, isDir bool) (done func(error))
}

var tracer atomic.Pointer[Tracer]

// Trace sets the tracer until the returned function is called.
func Trace(t Tracer) (stop func()) {
	tracer.Store(&t)
	return func() { tracer.Store(nil) }
}

func traced(f *os.File, isDir bool) func(error) {
	if t := tracer.Load(); t != nil {
		return (*t).Syncing(f, isDir)
	}
	return func(error) {}
}

// MkdirAll creates dir and any missing parents with mode, exactly (os.MkdirAll's mode
// passes through the umask, so a dir_mode of 0775 would come out 0755), and durably. Directories
// that already exist are left as the operator made them.
func MkdirAll(dir string, mode os.FileMode) error {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, mode); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, mode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by someone else
		}
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	// A directory whose entry a power cut takes back takes everything in it along.
	return SyncDir(filepath.Dir(dir))
}
