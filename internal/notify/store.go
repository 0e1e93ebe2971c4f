package notify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// boltQueue is the outbox of one server: a bbolt file under data_dir.
//
// The file holds one bucket per target, named after it, with two buckets inside:
// entries (sequence number → entry) and due, an index of the same entries ordered by
// their next attempt (next attempt in Unix nanoseconds, then sequence number → nothing).
// The index is what keeps a scan short however many entries wait: the delivery loop
// reads from its start and stops at the first entry not yet due.
type boltQueue struct {
	db      *bolt.DB
	counts  map[*target]*atomic.Int64 // entries per target, counted at open and kept in step
	buckets map[*target][]byte        // the bucket of each target, named after it
}

var (
	entriesBucket = []byte("entries")
	dueBucket     = []byte("due")
)

// entry is one event waiting for one target. It holds everything a retry needs, so
// that retries after a restart send the same id and body and keep the schedule.
type entry struct {
	ID        string    `json:"id"` // webhook-id
	Type      string    `json:"type"`
	Set       string    `json:"set"`
	Upload    string    `json:"upload"`
	Created   time.Time `json:"created"` // MaxAge counts from here
	Body      []byte    `json:"body"`    // signed as is on every attempt
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// seqOf is the sequence number of an item of this queue: its key is seqKey's.
func seqOf(it item) uint64 { return binary.BigEndian.Uint64([]byte(it.key)) }

func dueKey(at time.Time, seq uint64) []byte {
	// Clamped so that a clock before 1970 cannot sort an entry last.
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(max(at.UnixNano(), 0))), seq)
}

func parseDueKey(k []byte) (time.Time, uint64, bool) {
	if len(k) != 16 {
		return time.Time{}, 0, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))), binary.BigEndian.Uint64(k[8:]), true
}

// openBolt opens (or creates) the file at path for targets.
func openBolt(path string, targets []*target, log hclog.Logger) (*boltQueue, error) {
	// The timeout turns a second server on the same data_dir into an error rather
	// than a start that hangs on the file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			err = errors.New("in use by another outbox (another uploadsets on this data_dir?)")
		}
		return nil, fmt.Errorf("notify: open outbox %s: %w", path, err)
	}
	// Group commit: publishes arriving while one commit is being fsynced share the
	// next. bbolt's default waits 10ms to gather a batch, which every lone publish
	// would pay; 1ms still gathers what arrives during a commit, which is what counts.
	db.MaxBatchDelay = time.Millisecond
	q := &boltQueue{db: db, counts: map[*target]*atomic.Int64{}, buckets: map[*target][]byte{}}
	for _, t := range targets {
		q.counts[t] = new(atomic.Int64)
		q.buckets[t] = []byte(t.Name)
	}
	if err := q.prepare(targets, log); err != nil {
		db.Close()
		return nil, fmt.Errorf("notify: outbox %s: %w", path, err)
	}
	return q, nil
}

// prepare creates the buckets of the configured targets and counts what they hold.
// Entries of a target no longer configured stay in the file untouched, with a
// warning, in case it comes back.
func (q *boltQueue) prepare(targets []*target, log hclog.Logger) error {
	return q.db.Update(func(tx *bolt.Tx) error {
		configured := map[string]bool{}
		for _, t := range targets {
			configured[t.Name] = true
			b, err := tx.CreateBucketIfNotExists(q.buckets[t])
			if err != nil {
				return err
			}
			entries, err := b.CreateBucketIfNotExists(entriesBucket)
			if err != nil {
				return err
			}
			if _, err := b.CreateBucketIfNotExists(dueBucket); err != nil {
				return err
			}
			q.counts[t].Store(int64(entries.Stats().KeyN))
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if configured[string(name)] {
				return nil
			}
			if entries := b.Bucket(entriesBucket); entries != nil {
				if n := entries.Stats().KeyN; n > 0 {
					log.Warn("NotifyOrphaned", "notify", string(name), "pending", n, "why", "no notify block of this name in the config; its events wait in the outbox until one is back")
				}
			}
			return nil
		})
	})
}

// add stores e, due at e.Next, for every target of to in one transaction, which
// returns once fsynced. Concurrent calls share commits.
func (q *boltQueue) add(_ context.Context, to []*target, e entry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	// Counted before the commit, so that a delivery finishing first never takes the
	// gauge below zero.
	for _, t := range to {
		q.counts[t].Add(1)
	}
	err = q.db.Batch(func(tx *bolt.Tx) error {
		for _, t := range to {
			b := tx.Bucket(q.buckets[t])
			entries := b.Bucket(entriesBucket)
			seq, err := entries.NextSequence()
			if err != nil {
				return err
			}
			if err := entries.Put(seqKey(seq), val); err != nil {
				return err
			}
			if err := b.Bucket(dueBucket).Put(dueKey(e.Next, seq), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, t := range to {
			q.counts[t].Add(-1)
		}
	}
	return err
}

// due reads up to n entries of t whose next attempt is not after now, skipping those
// in flight: in one process, being in flight is all the holding an entry needs.
func (q *boltQueue) due(_ context.Context, t *target, now time.Time, n int) ([]item, time.Time, error) {
	var out []item
	var next time.Time
	err := q.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(q.buckets[t])
		entries := b.Bucket(entriesBucket)
		c := b.Bucket(dueBucket).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			at, seq, ok := parseDueKey(k)
			if !ok || t.busy(string(seqKey(seq))) {
				continue
			}
			if at.After(now) {
				next = at
				return nil
			}
			if len(out) == n {
				next = now
				return nil
			}
			it := item{key: string(seqKey(seq))}
			if err := json.Unmarshal(entries.Get(seqKey(seq)), &it.entry); err != nil {
				// Written by Publish in the same transaction as its index key, so
				// this is a damaged file: reading on would loop on it.
				return errors.New("damaged entry in the outbox")
			}
			out = append(out, it)
		}
		return nil
	})
	return out, next, err
}

// done removes a delivered or dropped entry (and counts it once, should an attempt
// of an entry that is gone end here anyway).
func (q *boltQueue) done(_ context.Context, t *target, it item) error {
	seq := seqOf(it)
	var removed bool
	err := q.db.Batch(func(tx *bolt.Tx) error {
		removed = false
		b := tx.Bucket(q.buckets[t])
		if err := b.Bucket(dueBucket).Delete(dueKey(it.Next, seq)); err != nil {
			return err
		}
		entries := b.Bucket(entriesBucket)
		if entries.Get(seqKey(seq)) == nil {
			return nil
		}
		removed = true
		return entries.Delete(seqKey(seq))
	})
	if err == nil && removed {
		q.counts[t].Add(-1)
	}
	return err
}

// reschedule records a failed attempt: e holds the new count, next attempt and
// error; it.Next is the next attempt it was read with.
func (q *boltQueue) reschedule(_ context.Context, t *target, it item, e entry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	seq := seqOf(it)
	return q.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(q.buckets[t])
		due := b.Bucket(dueBucket)
		if due.Get(dueKey(it.Next, seq)) == nil {
			return nil // delivered or rescheduled since it was read: nothing to undo
		}
		if err := due.Delete(dueKey(it.Next, seq)); err != nil {
			return err
		}
		if err := b.Bucket(entriesBucket).Put(seqKey(seq), val); err != nil {
			return err
		}
		return due.Put(dueKey(e.Next, seq), nil)
	})
}

// release has nothing to give back: an entry is held only by being in flight.
func (q *boltQueue) release(context.Context, *target, item) error { return nil }

func (q *boltQueue) pending(t *target) int { return int(q.counts[t].Load()) }

func (q *boltQueue) close() error { return q.db.Close() }
