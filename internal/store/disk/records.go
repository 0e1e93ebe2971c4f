package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
	bolt "go.etcd.io/bbolt"
)

// Records is the durable log of every upload's record: one bbolt file for the whole
// data_dir, with a bucket per set.
//
// One file per upload cost a file creation, a data sync and a directory sync at
// creation and a sync per state change; on a file system that scans for free inodes
// the creation alone cost more than the rest of a small upload. Here every change is a
// write to one file, in a group commit: the changes that arrive while one commit is
// being synced all go into the next, so a burst of uploads costs one commit (two
// fdatasyncs) per sync time, not per upload. bbolt's own Batch gathers for a fixed
// delay instead, which a lone change pays and a burst splits into several commits.
type Records struct {
	db *bolt.DB

	mu      sync.Mutex
	pending []change // waiting for the next commit
	running bool     // a committer goroutine is at work

	// cache holds recently used records, decoded: a small upload's requests read
	// its record half a dozen times, and decoding it each time was a twentieth of
	// the server's CPU. This process is the log's only writer, so the committer
	// keeps the cache exact; gen counts commits, so that a read that raced with one
	// does not put back what the commit replaced.
	cmu   sync.Mutex
	cache map[recordKey]entry
	gen   uint64
}

type recordKey struct{ set, id string }

// cacheSize bounds the cache: records of uploads in progress and just finished.
const cacheSize = 4096

// change is one caller's part of a commit. Its fn must check before it writes: an fn
// that fails must have changed nothing, for the others of its commit go on. cached,
// if set, runs once the commit is on disk, in commit order, with cmu held: it puts
// what fn wrote into the cache.
type change struct {
	fn     func(*bolt.Tx) error
	cached func()
	done   chan error
}

// OpenRecords opens (creating if needed) the log at path.
func OpenRecords(path string) (*Records, error) {
	// The timeout turns a second server on the same data_dir into an error rather
	// than a start that hangs on the file lock. Without a synced freelist, a commit
	// writes one page less; bbolt rebuilds the freelist when it opens the file.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			err = errors.New("in use by another process (another uploadsets on this data_dir?)")
		}
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	return &Records{db: db, cache: map[recordKey]entry{}}, nil
}

// Close closes the file.
func (r *Records) Close() error { return r.db.Close() }

// commit runs fn in the next group commit and returns once that is on disk: fn's own
// error, or the commit's.
func (r *Records) commit(fn func(*bolt.Tx) error, cached func()) error {
	c := change{fn: fn, cached: cached, done: make(chan error, 1)}
	r.mu.Lock()
	r.pending = append(r.pending, c)
	if !r.running {
		r.running = true
		go r.committer()
	}
	r.mu.Unlock()
	return <-c.done
}

// committer commits what is pending until nothing is.
func (r *Records) committer() {
	for {
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		errs := make([]error, len(batch))
		err := r.db.Update(func(tx *bolt.Tx) error {
			for i, c := range batch {
				errs[i] = c.fn(tx)
			}
			return nil
		})
		r.cmu.Lock()
		r.gen++
		for i, c := range batch {
			if err == nil && errs[i] == nil && c.cached != nil {
				c.cached()
			}
		}
		r.cmu.Unlock()
		for i, c := range batch {
			if err != nil {
				errs[i] = err
			}
			c.done <- errs[i]
		}
	}
}

// entry is a record as the log keeps it: Changed is when its state last changed, from
// which a finished upload's stay is counted (an unfinished one's activity is its data
// file's).
type entry struct {
	Record
	Changed time.Time
}

var errExists = errors.New("an upload with this ID exists")

// create adds a record; it never replaces one.
func (r *Records) create(set string, e entry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return r.commit(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(set))
		if err != nil {
			return err
		}
		if b.Get([]byte(e.ID)) != nil {
			return errExists
		}
		return b.Put([]byte(e.ID), val)
	}, func() { r.keep(recordKey{set, e.ID}, e) })
}

// keep puts e in the cache, making room if it is full; cmu is held.
func (r *Records) keep(k recordKey, e entry) {
	if _, ok := r.cache[k]; !ok && len(r.cache) >= cacheSize {
		for old := range r.cache { // any one: map order is random
			delete(r.cache, old)
			break
		}
	}
	r.cache[k] = e
}

// clone copies what a caller could change of e without changing the cache.
func clone(e entry) entry {
	e.MetaData = maps.Clone(e.MetaData)
	e.Storage = maps.Clone(e.Storage)
	e.Thumbs = maps.Clone(e.Thumbs)
	e.PartialUploads = slices.Clone(e.PartialUploads)
	return e
}

// get returns the record, or handler.ErrNotFound. It reads and decodes on a goroutine
// of its own: bbolt's lookup and encoding/json run deep (reflection, recursion), and on
// a request's goroutine they would grow that stack from 8 to 16 KiB; a stack keeps its
// size while the request is held, which for a slow PATCH is minutes, so every held
// upload would pin 8 KiB more.
func (r *Records) get(set, id string) (e entry, err error) {
	k := recordKey{set, id}
	r.cmu.Lock()
	e, ok := r.cache[k]
	gen := r.gen
	r.cmu.Unlock()
	if ok {
		return clone(e), nil
	}
	defer func() {
		if err == nil {
			r.cmu.Lock()
			if r.gen == gen { // no commit since the read began: e is current
				r.keep(k, e)
			}
			r.cmu.Unlock()
			e = clone(e)
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e, err = r.read(set, id)
	}()
	<-done
	return e, err
}

func (r *Records) read(set, id string) (entry, error) {
	var e entry
	found := false
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(set))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &e) // v lives only as long as tx
	})
	if err == nil && !found {
		err = handler.ErrNotFound
	}
	return e, err
}

// update applies change to the record and stores the result if change says it changed
// anything; handler.ErrNotFound if there is no record. A change that changes nothing
// (a retry that failed the same way) costs a read, no commit. change runs twice: on the
// record as read, then in the commit on the record as stored then.
func (r *Records) update(set, id string, change func(*entry) bool) error {
	e, err := r.get(set, id)
	if err != nil {
		return err
	}
	if !change(&e) {
		return nil
	}
	var stored entry
	var wrote bool
	return r.commit(func(tx *bolt.Tx) error {
		wrote = false
		b := tx.Bucket([]byte(set))
		if b == nil {
			return handler.ErrNotFound
		}
		v := b.Get([]byte(id))
		if v == nil {
			return handler.ErrNotFound
		}
		e, err := decode(v)
		if err != nil {
			return err
		}
		if !change(&e) {
			return nil
		}
		val, err := json.Marshal(e)
		if err != nil {
			return err
		}
		stored, wrote = e, true
		return b.Put([]byte(id), val)
	}, func() {
		if wrote {
			r.keep(recordKey{set, id}, stored)
		}
	})
}

// commits is how many write transactions the log has committed (for tests).
func (r *Records) commits() (n int) {
	r.db.View(func(tx *bolt.Tx) error {
		n = int(tx.ID())
		return nil
	})
	return n
}

// remove deletes the record, if there is one.
func (r *Records) remove(set, id string) error {
	return r.commit(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(set)); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	}, func() { delete(r.cache, recordKey{set, id}) })
}

// ids lists the uploads of set with a record.
func (r *Records) ids(set string) ([]string, error) {
	var ids []string
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(set))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// adopt stores records of the per-upload files an earlier version kept, unless the
// log has them already, in one transaction.
func (r *Records) adopt(set string, es []entry) error {
	defer func() {
		r.cmu.Lock()
		r.gen++ // what a read began before this is not to be cached
		r.cmu.Unlock()
	}()
	return r.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(set))
		if err != nil {
			return err
		}
		for _, e := range es {
			if b.Get([]byte(e.ID)) != nil {
				continue
			}
			val, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(e.ID), val); err != nil {
				return err
			}
		}
		return nil
	})
}

// decode decodes a record in a commit, where the committer's goroutine runs it.
func decode(val []byte) (e entry, err error) {
	err = json.Unmarshal(val, &e)
	return e, err
}

// WriteTo writes a consistent copy of the log as of its last commit, as a backup of a
// running server would take it.
func (r *Records) WriteTo(w io.Writer) (n int64, err error) {
	err = r.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
