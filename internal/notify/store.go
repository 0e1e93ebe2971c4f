package notify

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file holds one bucket per target, named after it, with two buckets inside:
// entries (sequence number → entry) and due, an index of the same entries ordered by
// their next attempt (next attempt in Unix nanoseconds, then sequence number → nothing).
// The index is what keeps a scan short however many entries wait: the delivery loop
// reads from its start and stops at the first entry not yet due.
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

// item is an entry read for an attempt, with its place in the file.
type item struct {
	seq uint64
	entry
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

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

// prepare creates the buckets of the configured targets and counts what they hold.
func (o *Outbox) prepare() error {
	return o.db.Update(func(tx *bolt.Tx) error {
		configured := map[string]bool{}
		for _, t := range o.targets {
			configured[t.Name] = true
			b, err := tx.CreateBucketIfNotExists(t.bucket)
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
			t.pending.Store(int64(entries.Stats().KeyN))
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if configured[string(name)] {
				return nil
			}
			if entries := b.Bucket(entriesBucket); entries != nil {
				if n := entries.Stats().KeyN; n > 0 {
					o.log.Warn("NotifyOrphaned", "notify", string(name), "pending", n, "why", "no notify block of this name in the config; its events wait in the outbox until one is back")
				}
			}
			return nil
		})
	})
}

// add stores a new entry, due now, for the target of bucket.
func add(tx *bolt.Tx, bucket, val []byte, now time.Time) error {
	b := tx.Bucket(bucket)
	entries := b.Bucket(entriesBucket)
	seq, err := entries.NextSequence()
	if err != nil {
		return err
	}
	if err := entries.Put(seqKey(seq), val); err != nil {
		return err
	}
	return b.Bucket(dueBucket).Put(dueKey(now, seq), nil)
}

// due reads up to n entries of t whose next attempt is not after now, skipping those
// in flight. When it stops early it also returns when to look again: the next attempt
// of the first entry not yet due, or zero when nothing waits.
func (o *Outbox) due(t *target, now time.Time, n int) ([]item, time.Time, error) {
	var out []item
	var next time.Time
	err := o.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(t.bucket)
		entries := b.Bucket(entriesBucket)
		c := b.Bucket(dueBucket).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			at, seq, ok := parseDueKey(k)
			if !ok || t.busy(seq) {
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
			it := item{seq: seq}
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

// done removes a delivered or dropped entry.
func (o *Outbox) done(t *target, it item) error {
	return o.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(t.bucket)
		if err := b.Bucket(dueBucket).Delete(dueKey(it.Next, it.seq)); err != nil {
			return err
		}
		return b.Bucket(entriesBucket).Delete(seqKey(it.seq))
	})
}

// reschedule records a failed attempt: it.entry holds the new count, next attempt and
// error; old is the next attempt it was read with.
func (o *Outbox) reschedule(t *target, it item, old time.Time) error {
	val, err := json.Marshal(it.entry)
	if err != nil {
		return err
	}
	return o.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(t.bucket)
		due := b.Bucket(dueBucket)
		if err := due.Delete(dueKey(old, it.seq)); err != nil {
			return err
		}
		if err := b.Bucket(entriesBucket).Put(seqKey(it.seq), val); err != nil {
			return err
		}
		return due.Put(dueKey(it.Next, it.seq), nil)
	})
}
