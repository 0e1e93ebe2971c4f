package disk

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uploadsets/uploadsets/internal/durable"
)

// Buffers follow the sender. At the smallest size, reads come out of net/http's own
// 4 KiB socket buffer; five full reads in a row (more than that buffer holds) show a
// sender with more in flight, and move the copy up; at the larger sizes two full
// reads in a row do, so a fast sender reaches 1 MiB reads within a few reads, where
// io.Copy into a file would stay at 32 KiB. A read at a larger size that brings less
// than slowRead has caught up with a sender that had almost nothing waiting: the next
// read will probably wait for the network, and it waits with the smallest buffer. (The
// first read at a size is not counted: it may be what was left in net/http's buffer.)
// A held upload (a phone on a train, a stalled client) thus pins 1 KiB, not whatever
// size its last burst reached.
var (
	bufSizes     = [...]int{1 << 10, 64 << 10, 1 << 20}
	promoteAfter = [...]int{5, 2}
)

const (
	lastStage = len(bufSizes) - 1
	slowRead  = 4 << 10
)

var bufPools [len(bufSizes)]sync.Pool

// largeBuffers bounds how many copies hold the largest buffers at once. A read waits
// with its buffer, so senders that burst and then stall keep theirs: 400 of them
// pinned 400 MiB. A handful of large writers already keep the disk busy; the rest go
// on at the middle size, which costs them some CPU per byte, not correctness.
var largeBuffers = make(chan struct{}, 16)

func takeLarge() bool {
	select {
	case largeBuffers <- struct{}{}:
		return true
	default:
		return false
	}
}

func returnLarge() { <-largeBuffers }

func init() {
	for i, n := range bufSizes {
		bufPools[i].New = func() any { b := make([]byte, n); return &b }
	}
}

// blockWriter is a destination that can also take whole aligned blocks past the page
// cache (fileWriter; tests pass plain writers).
type blockWriter interface {
	io.Writer
	// blockAlign is the alignment of offsets and lengths writeBlocks needs, and how far
	// the next write is from it; align 0 means it cannot take blocks.
	blockAlign() (align, misaligned int)
	writeBlocks(p []byte) (int, error)
}

// copyBody copies src to w, its buffer following the sender (see bufSizes). At full
// speed, where w takes aligned blocks, it goes on in copyBlocks until the body ends or
// the sender slows down.
//
// most, when positive, is the most the body can hold: a body that fits the middle
// buffer starts there, and comes in with a read or two instead of a dozen small ones
// (most small uploads are read whole at once), for at most that buffer pinned while
// it is held.
func copyBody(w io.Writer, src io.Reader, most int64) (int64, error) {
	bw, _ := w.(blockWriter)
	stage, full := 0, 0 // full: consecutive reads that filled the buffer
	if most > 0 && most <= int64(bufSizes[1]) {
		stage = 1
	}
	fresh := true // no read yet at this size
	bp := bufPools[stage].Get().(*[]byte)
	defer func() {
		if bp != nil {
			bufPools[stage].Put(bp)
		}
		if stage == lastStage {
			returnLarge()
		}
	}()
	setStage := func(s int) {
		bufPools[stage].Put(bp)
		if stage == lastStage {
			returnLarge()
		}
		stage, full, fresh = s, 0, true
		bp = bufPools[s].Get().(*[]byte)
	}

	var written int64
	for {
		if stage == lastStage && bw != nil {
			if align, off := bw.blockAlign(); align > 0 {
				first := bp
				bp = nil // copyBlocks returns it to the pool
				n, ended, err := copyBlocks(bw, src, first, align, off)
				written += n
				if ended || err != nil {
					return written, err // the deferred func returns the token
				}
				returnLarge()
				stage, full, fresh = 0, 0, true
				bp = bufPools[0].Get().(*[]byte)
				continue
			}
		}
		buf := *bp
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			written += int64(nw)
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		switch {
		case nr == len(buf):
			if full++; stage < lastStage && full == promoteAfter[stage] {
				if stage+1 < lastStage || takeLarge() {
					setStage(stage + 1)
					continue
				}
				full = 0 // try again after as many full reads
			}
		case nr < slowRead && stage > 0 && !fresh:
			setStage(0)
			continue
		default:
			full = 0
		}
		fresh = false
	}
}

// copyBlocks copies a fast body in aligned blocks (O_DIRECT for a file): nothing is
// copied into the page cache, so the CPU goes to the network, and the fsync that ends
// the PATCH has almost nothing left to write. A second goroutine writes one block
// while the next is read, so disk and network overlap.
//
// A block is handed over when the buffer is full, or when a read comes back short
// (the sender is not ahead of us) with at least one aligned length in hand. Bytes
// short of an aligned length wait for the next read, so a pause leaves less than 4 KiB
// unwritten; nothing unwritten has been acknowledged, so a crash loses nothing the
// client was told was stored. When a read brings less than slowRead, the sender has
// slowed down: everything in hand is written and copyBlocks returns with ended false,
// for copyBody to go on with small buffers. It returns ended true when the body ended
// (tusd's body reader ends it on any error, after the bytes that arrived).
//
// first is a block-sized pooled buffer, owned from here on; off is how far the file's
// end is past an aligned offset. The bytes up to the next aligned offset and the
// bytes left at the end go through the cache.
func copyBlocks(bw blockWriter, src io.Reader, first *[]byte, align, off int) (written int64, ended bool, err error) {
	pool := &bufPools[lastStage]
	cur := first
	defer func() { pool.Put(cur) }()

	if off > 0 {
		nr, rerr := io.ReadFull(src, (*cur)[:align-off])
		nw, werr := bw.Write((*cur)[:nr])
		if werr != nil || rerr != nil {
			return int64(nw), true, werr // rerr is EOF: the body ended
		}
		written += int64(nw)
	}

	type block struct {
		buf *[]byte
		n   int
	}
	// Unbuffered: at most one block is being written while another fills, and the
	// writer returns each buffer to the pool, so a paused sender pins one buffer.
	blocks := make(chan block)
	done := make(chan struct{})
	var (
		blockBytes int64
		blockErr   error
		failed     atomic.Bool
	)
	go func() {
		defer close(done)
		for b := range blocks {
			if blockErr == nil {
				n, err := bw.writeBlocks((*b.buf)[:b.n])
				blockBytes += int64(n)
				if err != nil {
					blockErr = err
					failed.Store(true)
				}
			}
			pool.Put(b.buf)
		}
	}()
	// handOver gives the writer the aligned part of what is filled and goes on in a
	// fresh buffer with the rest. The rest is copied out first: once handed over, the
	// buffer is the writer's, which puts it back in the pool when written, and
	// another upload may be filling it by the time a copy after the hand-over read it.
	handOver := func(filled int) int {
		n := filled - filled%align
		next := pool.Get().(*[]byte)
		copy(*next, (*cur)[n:filled])
		blocks <- block{cur, n}
		cur = next
		return filled - n
	}

	filled := 0
	for fresh := true; !failed.Load(); fresh = false {
		want := len(*cur) - filled
		nr, rerr := src.Read((*cur)[filled:])
		filled += nr
		if rerr != nil {
			ended = true
			break
		}
		if nr < slowRead && nr < want && !fresh {
			break
		}
		if filled == len(*cur) || (nr < want && filled >= align) {
			filled = handOver(filled)
		}
	}
	if !failed.Load() && filled >= align {
		filled = handOver(filled)
	}
	close(blocks)
	<-done
	written += blockBytes
	if blockErr != nil {
		return written, true, blockErr
	}
	if filled > 0 {
		nw, err := bw.Write((*cur)[:filled])
		written += int64(nw)
		if err != nil {
			return written, true, err
		}
	}
	return written, ended, nil
}

// fileWriter appends to an upload's data file. Writes through the page cache start
// writeback every few MiB, so the fsync that ends a PATCH finds little left to write;
// whole aligned blocks go past the cache with O_DIRECT where the filesystem allows it.
type fileWriter struct {
	f      *os.File
	fd     int
	end    int64 // the file's size: where the next byte goes
	synced int64 // where writeback was started up to
	align  int   // O_DIRECT alignment; 0 until probed, -1 when not supported
	direct bool  // O_DIRECT is set on fd
}

const writeBehindStep = 8 << 20

func newFileWriter(f *os.File, offset int64) *fileWriter {
	return &fileWriter{f: f, fd: int(f.Fd()), end: offset, synced: offset}
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.direct {
		if err := w.setDirect(false); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.end += int64(n)
	if w.end-w.synced >= writeBehindStep {
		// Advisory: a failure here only means the final fsync does all the work.
		unix.SyncFileRange(w.fd, w.synced, w.end-w.synced, unix.SYNC_FILE_RANGE_WRITE)
		w.synced = w.end
	}
	return n, err
}

func (w *fileWriter) blockAlign() (align, misaligned int) {
	if w.align == 0 {
		w.align = probeDirect(w.fd)
	}
	if w.align < 0 {
		return 0, 0
	}
	return w.align, int(w.end % int64(w.align))
}

// writeBlocks writes p with O_DIRECT; copyBody calls it only with an aligned length at
// an aligned offset. A filesystem that refuses after all gets the bytes through the
// page cache.
func (w *fileWriter) writeBlocks(p []byte) (int, error) {
	if uintptr(unsafe.Pointer(&p[0]))%uintptr(w.align) != 0 {
		return w.Write(p)
	}
	if !w.direct {
		if err := w.setDirect(true); err != nil {
			w.align = -1
			return w.Write(p)
		}
	}
	n, err := w.f.Write(p)
	if n == 0 && errors.Is(err, syscall.EINVAL) {
		w.align = -1
		return w.Write(p)
	}
	w.end += int64(n)
	// Written past the cache: nothing there for writeback to start.
	w.synced = w.end
	return n, err
}

func (w *fileWriter) setDirect(on bool) error {
	flags, err := unix.FcntlInt(uintptr(w.fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	if _, err := unix.FcntlInt(uintptr(w.fd), unix.F_SETFL, flags); err != nil {
		return err
	}
	w.direct = on
	return nil
}

// probeDirect returns the alignment O_DIRECT needs on fd's file (statx reports it on
// Linux 6.1 and later), at least a page so that pooled buffers qualify; -1 when the
// filesystem does not do direct I/O (tmpfs, for one) or the kernel does not say.
func probeDirect(fd int) int {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st); err != nil ||
		st.Mask&unix.STATX_DIOALIGN == 0 || st.Dio_offset_align == 0 {
		return -1
	}
	align := max(int(st.Dio_offset_align), int(st.Dio_mem_align), 4096)
	if bufSizes[lastStage]%align != 0 {
		return -1
	}
	return align
}

// sync makes the data durable; the file's size is in its metadata, which fdatasync
// covers since it changed.
func (w *fileWriter) sync() error { return fdatasync(w.f) }

// fdatasync is a variable for tests that fail it, as a dying disk would.
var fdatasync = durable.SyncData
