package disk

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chunky hands out its data in reads of varying size, as a socket does.
type chunky struct {
	data []byte
	rng  *rand.Rand
	read int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rng.IntN(300<<10))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	c.read += n
	return n, nil
}

// Every mix of resumed offset and body length lands byte for byte in a real file,
// whether the filesystem takes O_DIRECT (ext4, xfs) or not (tmpfs): the unaligned head,
// the direct blocks, the cached tail.
func TestCopyBodyIntoFile(t *testing.T) {
	dirs := map[string]string{"tempdir": t.TempDir()}
	if shm, err := os.MkdirTemp("/dev/shm", "disk-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(shm) })
		dirs["shm"] = shm
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 7<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	offsets := []int{0, 1, 4095, 4096 + 7, 3<<20 + 5}
	lengths := []int{0, 1, 100 << 10, 1 << 20, 3<<20 + 123}
	for name, dir := range dirs {
		for _, off := range offsets {
			for _, n := range lengths {
				t.Run(fmt.Sprintf("%s/off=%d/len=%d", name, off, n), func(t *testing.T) {
					path := dir + "/" + fmt.Sprint(off, "-", n)
					if err := os.WriteFile(path, data[:off], 0o600); err != nil {
						t.Fatal(err)
					}
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
					if err != nil {
						t.Fatal(err)
					}
					w := newFileWriter(f, int64(off))
					got, err := copyBody(w, &chunky{data: data[off : off+n], rng: rng}, -1)
					if err == nil {
						err = w.sync()
					}
					f.Close()
					if err != nil || got != int64(n) || w.end != int64(off+n) {
						t.Fatalf("copyBody = %d, %v; end %d; want %d bytes to end at %d", got, err, w.end, n, off+n)
					}
					onDisk, _ := os.ReadFile(path)
					if !bytes.Equal(onDisk, data[:off+n]) {
						t.Fatalf("file differs from what was sent (len %d, want %d)", len(onDisk), off+n)
					}
				})
			}
		}
	}
}

// blockRecorder takes blocks as a file would and can run out of room after some.
type blockRecorder struct {
	bytes.Buffer
	align  int
	blocks int
	room   int // blocks it takes before ENOSPC; 0 means no limit
}

func (b *blockRecorder) blockAlign() (int, int) { return b.align, b.Len() % b.align }

func (b *blockRecorder) writeBlocks(p []byte) (int, error) {
	if b.Len()%b.align != 0 || len(p)%b.align != 0 {
		return 0, fmt.Errorf("unaligned block: %d bytes at %d", len(p), b.Len())
	}
	if b.room > 0 && b.blocks == b.room {
		return 0, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	}
	b.blocks++
	return b.Buffer.Write(p)
}

func TestCopyBodyUsesAlignedBlocksAtFullSpeed(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (5<<20+300)/16)
	w := &blockRecorder{align: 4096}
	w.WriteString("xyz") // a resumed upload at an unaligned offset
	n, err := copyBody(w, bytes.NewReader(data), -1)
	if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes()[3:], data) {
		t.Fatalf("copyBody = %d, %v; content equal: %v", n, err, bytes.Equal(w.Bytes()[3:], data))
	}
	// 5 × 1 KiB, 2 × 64 KiB through the cache, then 1 MiB blocks.
	if w.blocks < 4 {
		t.Errorf("%d aligned blocks for a 5 MiB body; want at least 4", w.blocks)
	}
}

// A disk that fills during the block writes stops the copy: it neither reads on to the
// end of the body nor reports more than was written.
func TestCopyBlocksStopsWhenTheDiskIsFull(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 64<<20)
	src := &chunky{data: data, rng: rand.New(rand.NewPCG(3, 4))}
	w := &blockRecorder{align: 4096, room: 3}
	n, err := copyBody(w, src, -1)
	if !IsNoSpace(err) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	if n != int64(w.Len()) {
		t.Errorf("reported %d bytes written, the disk holds %d", n, w.Len())
	}
	if src.read > w.Len()+3<<20 {
		t.Errorf("read %d bytes of the body for %d written: the copy went on after the disk filled", src.read, w.Len())
	}
}

// A sender that pauses mid-body finds its bytes on disk, all but the last alignment
// unit at most, while the request is still open: a stalled PATCH does not sit on
// megabytes that only its end would write.
func TestPausedSenderIsWrittenOut(t *testing.T) {
	path := t.TempDir() + "/data"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	const sent = 3<<20 + 100
	go pw.Write(make([]byte, sent))
	w := newFileWriter(f, 0)
	res := make(chan error, 1)
	go func() { _, err := copyBody(w, pr, -1); res <- err }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, _ := os.Stat(path)
		if fi.Size() >= sent-4096 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes on disk while the sender pauses", fi.Size(), sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pw.Close()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != sent {
		t.Errorf("size %d after the body ended, want %d", fi.Size(), sent)
	}
}

// paced hands out its data in the given chunks (a fast burst, then a trickle) and
// records the size of every buffer it is asked to fill.
type paced struct {
	chunks []int
	asked  []int
}

func (p *paced) Read(b []byte) (int, error) {
	p.asked = append(p.asked, len(b))
	for len(p.chunks) > 0 && p.chunks[0] == 0 {
		p.chunks = p.chunks[1:]
	}
	if len(p.chunks) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), p.chunks[0])
	p.chunks[0] -= n
	for i := range b[:n] {
		b[i] = 'x'
	}
	return n, nil
}

// After a fast burst, a sender that slows to a trickle is read with the smallest
// buffer again: a held upload pins 1 KiB, not the 1 MiB its burst reached.
func TestSlowSenderIsReadWithTheSmallestBuffer(t *testing.T) {
	for name, w := range map[string]io.Writer{
		"blocks": &blockRecorder{align: 4096},
		"cache":  &bytes.Buffer{},
	} {
		t.Run(name, func(t *testing.T) {
			src := &paced{chunks: []int{5 << 20, 1500, 1500, 1500, 1500, 1500}}
			n, err := copyBody(w, src, -1)
			if err != nil || n != 5<<20+5*1500 {
				t.Fatalf("copyBody = %d, %v", n, err)
			}
			if got := slices.Max(src.asked); got != bufSizes[lastStage] {
				t.Errorf("largest read %d during the burst, want %d", got, bufSizes[lastStage])
			}
			// The trickle: the read that first sees it may still offer the burst's
			// buffer; every read after it offers the smallest.
			tail := src.asked[len(src.asked)-5:]
			for _, a := range tail {
				if a > bufSizes[0] {
					t.Fatalf("reads during the trickle offered %v bytes; want at most %d each", tail, bufSizes[0])
				}
			}
		})
	}
}

// A fast body read through net/http's 4 KiB buffer (whose leftovers make short reads
// now and then) climbs to 1 MiB blocks and stays there: it is not taken for a slow
// sender and sent back to 1 KiB reads.
func TestFastSenderStaysAtFullSize(t *testing.T) {
	const size = 64 << 20
	for _, resumedAt := range []int{0, 3} {
		sock := &paced{chunks: []int{size}}
		w := &blockRecorder{align: 4096}
		w.Write(make([]byte, resumedAt))
		n, err := copyBody(w, bufio.NewReaderSize(sock, 4096), -1)
		if err != nil || n != size {
			t.Fatalf("copyBody = %d, %v", n, err)
		}
		if len(sock.asked) > 100 || w.blocks < 60 {
			t.Errorf("resumed at %d: %d socket reads and %d blocks for 64 MiB; want about 64 of each", resumedAt, len(sock.asked), w.blocks)
		}
	}
}

// burstThenStall fills every read until burst bytes are out, then blocks (as a
// sender that stopped does) until release is closed, noting the buffer it waits with.
type burstThenStall struct {
	burst   int
	release chan struct{}
	waiting chan int // the size of the buffer the stalled read holds
}

func (r *burstThenStall) Read(p []byte) (int, error) {
	if r.burst > 0 {
		n := min(len(p), r.burst)
		r.burst -= n
		return n, nil
	}
	r.waiting <- len(p)
	<-r.release
	return 0, io.EOF
}

func TestStalledBurstsShareFewLargeBuffers(t *testing.T) {
	uploads := 3 * cap(largeBuffers)
	release := make(chan struct{})
	waiting := make(chan int, uploads)
	var wg sync.WaitGroup
	for range uploads {
		wg.Go(func() {
			copyBody(io.Discard, &burstThenStall{burst: 4 << 20, release: release, waiting: waiting}, -1)
		})
	}
	large := 0
	for range uploads {
		select {
		case n := <-waiting:
			if n > bufSizes[1] {
				large++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the copies did not all reach their stall")
		}
	}
	close(release)
	wg.Wait()
	if large > cap(largeBuffers) {
		t.Errorf("%d stalled uploads hold a large buffer; at most %d may", large, cap(largeBuffers))
	}
	if large == 0 {
		t.Error("no upload got a large buffer: fast senders must still be promoted")
	}
	if len(largeBuffers) != 0 {
		t.Errorf("%d large-buffer tokens not returned", len(largeBuffers))
	}
}

// countingWriter counts the writes it takes.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.Buffer.Write(p) }

// A body known to fit the middle buffer is read at that size from the start: a small
// upload that arrives whole is one read and one write, not a dozen.
func TestSmallBodyIsCopiedInOneWrite(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 48<<10)
	var w countingWriter
	if n, err := copyBody(&w, bytes.NewReader(data), int64(len(data))); err != nil || n != int64(len(data)) {
		t.Fatalf("copyBody = %d, %v", n, err)
	}
	if w.writes != 1 || !bytes.Equal(w.Bytes(), data) {
		t.Errorf("%d writes, want 1 (and the same bytes)", w.writes)
	}
	w = countingWriter{}
	copyBody(&w, bytes.NewReader(data), -1)
	if w.writes < 5 {
		t.Errorf("a body of unknown size took %d writes: it should start small", w.writes)
	}
}
