package notify

import (
	"context"
	"errors"
	"time"
)

// queue is where an Outbox keeps its entries: what Publish and the delivery loops need
// of a store. Two implement it: boltQueue (a file under data_dir, one process) and
// s3Queue (objects in a bucket, shared by every instance).
type queue interface {
	// add stores e durably for every target of to before it returns, or none of
	// them when it fails (as far as the store can take back what it wrote).
	add(ctx context.Context, to []*target, e entry) error
	// due returns up to n entries of t whose next attempt is not after now, leaving
	// out those t has in flight, each held for this instance until done, reschedule
	// or release. When it stops early it also returns when to look again: the next
	// attempt of the first entry not yet due, or zero when it cannot tell.
	due(ctx context.Context, t *target, now time.Time, n int) ([]item, time.Time, error)
	// done removes a delivered or dropped entry.
	done(ctx context.Context, t *target, it item) error
	// reschedule records a failed attempt: it is the entry as due returned it, e its
	// new state (attempts, next attempt, last error).
	reschedule(ctx context.Context, t *target, it item, e entry) error
	// release gives back an entry whose attempt was cut short, unchanged.
	release(ctx context.Context, t *target, it item) error
	// pending is the number of entries waiting for t.
	pending(t *target) int
	close() error
}

// item is an entry read for an attempt, with its place in its queue.
type item struct {
	key string // unique among a target's entries: what the target's inFlight holds
	// etag is the version of the S3 object this instance claimed; the bbolt queue
	// leaves it empty.
	etag string
	entry
}

// errClaimLost is an outcome not recorded because another instance took the entry
// over (this one's claim had run out): it is that instance's to finish.
var errClaimLost = errors.New("the entry was claimed by another instance")
