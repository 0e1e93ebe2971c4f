package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"
)

const (
	// poll is how often an instance lists a target's entries when nothing wakes it
	// sooner: how long an event published by another instance can wait for a look
	// when the instance that published it cannot deliver it (it died).
	poll = time.Second
	// pageSize is how many keys one listing reads, and maxPages how many listings one
	// look makes at most, when every key read is due but held by other instances.
	pageSize = 100
	maxPages = 4
	// countEvery is how often a target's entries are all counted for Pending when
	// more than a page of them wait; a page or less is counted by every look.
	countEvery = 30 * time.Second
	// claimMargin is how long past an attempt's timeout its claim lasts: time for
	// the request to start and for its outcome to be written (writeTimeout), and for
	// the clocks of the instances to disagree a little.
	claimMargin = 30 * time.Second
	keyTime     = "20060102T150405.000000000Z"
)

// s3Queue is the outbox of several instances: one object per entry in a bucket.
//
// An entry of target T whose next attempt is at N is the object
//
//	<prefix><T>/<N as 20060102T150405.000000000Z, UTC>_<webhook-id>.json
//
// so that a listing, which S3 returns in key order, is in the order entries fall
// due: a look reads keys from the start and stops at the first not yet due,
// however many wait behind it. The object is the entry as JSON (the bbolt file's
// entry) plus, while an instance attempts it, that instance's claim.
type s3Queue struct {
	client   *s3.Client
	bucket   string
	prefix   string
	instance string // this outbox's name in claims
	log      hclog.Logger
	targets  map[*target]*s3Target
}

// s3Target is what an instance remembers of a target's entries between looks.
type s3Target struct {
	dir string // <prefix><name>/

	mu sync.Mutex
	// held are the claims of other instances seen on objects, by key, with the
	// version they were seen on: while the listing shows that version and the
	// claim lasts, the object is not read again. Kept to the keys of the last look.
	held map[string]heldBy
	// gone are the keys this instance removed, which a listing begun before the
	// removal still shows: not read again. Kept to the keys of the last look.
	gone map[string]bool
	// Pending is base + delta: base is what the last count found, delta what this
	// instance added and removed since that count began.
	base, delta int64
	counted     time.Time // of the last full count

	looks atomic.Int64 // listings made: tests wait on it
}

type heldBy struct {
	etag  string
	until time.Time
}

// s3Entry is the object of an entry.
type s3Entry struct {
	entry
	// The claim of the instance attempting the entry, if any: until it passes,
	// no other instance attempts it.
	ClaimedBy    string    `json:"claimed_by,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
}

// OpenS3 opens the outbox of an instance that shares its entries with the other
// instances through objects under prefix in bucket (the server keeps them under
// <data_dir>/.notify/; prefix is taken as a folder, a "/" added if missing).
// Targets must be the same on every instance. It lists what waits for each target
// (an error if the bucket cannot be read) and warns of entries of targets no
// longer configured, which stay untouched in case they come back.
func OpenS3(client *s3.Client, bucket, prefix string, targets []Target, log hclog.Logger) (*Outbox, error) {
	o, err := newOutbox(targets, log)
	if err != nil {
		return nil, err
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	q := &s3Queue{client: client, bucket: bucket, prefix: prefix, instance: instanceName(), log: o.log, targets: map[*target]*s3Target{}}
	for _, t := range o.targets {
		if strings.Contains(t.Name, "/") {
			return nil, fmt.Errorf("notify %q: a name with / cannot name a folder of the outbox", t.Name)
		}
		q.targets[t] = &s3Target{dir: prefix + t.Name + "/", held: map[string]heldBy{}, gone: map[string]bool{}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.prepare(ctx); err != nil {
		return nil, fmt.Errorf("notify: outbox s3://%s/%s: %w", bucket, prefix, err)
	}
	o.q, o.poll = q, poll
	return o, nil
}

// instanceName names this outbox in claims: the host, for whoever reads the bucket,
// and random bits, so that two outboxes never take each other's claims for their own.
func instanceName() string {
	host, _ := os.Hostname()
	b := make([]byte, 8)
	rand.Read(b)
	return host + "/" + hex.EncodeToString(b)
}

// prepare counts the entries of each target, and warns of folders of others.
func (q *s3Queue) prepare(ctx context.Context) error {
	configured := map[string]bool{}
	for _, st := range q.targets {
		n, err := q.count(ctx, st.dir)
		if err != nil {
			return err
		}
		st.base, st.counted = int64(n), time.Now()
		configured[st.dir] = true
	}
	var token *string
	for {
		out, err := q.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: &q.bucket, Prefix: &q.prefix, Delimiter: aws.String("/"), ContinuationToken: token,
		})
		if err != nil {
			return err
		}
		for _, p := range out.CommonPrefixes {
			dir := aws.ToString(p.Prefix)
			if configured[dir] {
				continue
			}
			n, err := q.count(ctx, dir)
			if err != nil {
				return err
			}
			if n > 0 {
				q.log.Warn("NotifyOrphaned", "notify", strings.TrimSuffix(strings.TrimPrefix(dir, q.prefix), "/"), "pending", n, "why", "no notify block of this name in the config; its events wait in the outbox until one is back")
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		token = out.NextContinuationToken
	}
}

// count counts the objects under dir, a thousand keys at a time.
func (q *s3Queue) count(ctx context.Context, dir string) (int, error) {
	n := 0
	var token *string
	for {
		out, err := q.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &q.bucket, Prefix: &dir, ContinuationToken: token})
		if err != nil {
			return n, err
		}
		n += len(out.Contents)
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		token = out.NextContinuationToken
	}
}

func (st *s3Target) key(e entry) string {
	return st.dir + e.Next.UTC().Format(keyTime) + "_" + e.ID + ".json"
}

// dueAt is the next attempt a key of st names.
func (st *s3Target) dueAt(key string) (time.Time, bool) {
	name, ok := strings.CutPrefix(key, st.dir)
	if !ok {
		return time.Time{}, false
	}
	at, _, ok := strings.Cut(name, "_")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(keyTime, at)
	return t, err == nil
}

// add writes e for every target at once. Each object is new (If-None-Match "*"): one
// already there is the same event published at the same instant, so nothing is lost
// by leaving it. When a write fails, those that succeeded are removed again, so that
// a Publish that failed, and is repeated, does not notify some apps twice.
func (q *s3Queue) add(ctx context.Context, to []*target, e entry) error {
	body, err := json.Marshal(s3Entry{entry: e})
	if err != nil {
		return err
	}
	errs := make([]error, len(to))
	created := make([]bool, len(to))
	var wg sync.WaitGroup
	for i, t := range to {
		wg.Go(func() {
			_, err := q.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &q.bucket, Key: aws.String(q.targets[t].key(e)), Body: bytes.NewReader(body),
				ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*"),
			})
			switch {
			case err == nil:
				created[i] = true
			case statusOf(err) != http.StatusPreconditionFailed:
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		for i, t := range to {
			if created[i] {
				q.delete(undo, q.targets[t].key(e), "")
			}
		}
		return err
	}
	for i, t := range to {
		if created[i] {
			q.targets[t].adjust(1)
		}
	}
	return nil
}

func (st *s3Target) adjust(n int64) {
	st.mu.Lock()
	st.delta += n
	st.mu.Unlock()
}

func (q *s3Queue) pending(t *target) int {
	st := q.targets[t]
	st.mu.Lock()
	defer st.mu.Unlock()
	return int(max(st.base+st.delta, 0))
}

// due lists t's entries from the first and claims those due that no other instance
// holds, up to n, reading one object per candidate. It stops at the first key not
// yet due, or once it has n; when every key of a page is due but taken it reads
// the next, up to maxPages.
func (q *s3Queue) due(ctx context.Context, t *target, now time.Time, n int) ([]item, time.Time, error) {
	st := q.targets[t]
	delta0 := st.snapshot()
	st.looks.Add(1)

	var out []item
	var next time.Time
	seen := map[string]bool{}
	var after *string
	exact := -1 // the number of entries, when the first page held them all
	truncated := false
pages:
	for page := range maxPages {
		list, err := q.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: &q.bucket, Prefix: &st.dir, MaxKeys: aws.Int32(pageSize), StartAfter: after,
		})
		if err != nil {
			return out, time.Time{}, err
		}
		truncated = aws.ToBool(list.IsTruncated)
		if page == 0 && !truncated {
			exact = len(list.Contents)
		}
		for _, obj := range list.Contents {
			seen[aws.ToString(obj.Key)] = true
		}
		for _, obj := range list.Contents {
			key, etag := aws.ToString(obj.Key), aws.ToString(obj.ETag)
			after = obj.Key
			at, ok := st.dueAt(key)
			switch {
			case !ok:
				continue // not an entry: nothing of ours
			case at.After(now):
				next = at
				break pages
			case len(out) == n:
				next = now
				break pages
			}
			if t.busy(key) || st.skip(key, etag, now) {
				continue
			}
			it, ok, err := q.claim(ctx, t, st, key, now)
			if err != nil {
				return out, time.Time{}, err
			}
			if ok {
				out = append(out, it)
			}
		}
		if !truncated {
			break
		}
	}
	st.mu.Lock()
	for key := range st.held {
		if !seen[key] {
			delete(st.held, key)
		}
	}
	for key := range st.gone {
		if !seen[key] {
			delete(st.gone, key)
		}
	}
	recount := exact < 0 && time.Since(st.counted) >= countEvery
	st.mu.Unlock()
	if exact >= 0 {
		st.counts(exact, delta0)
	}
	if recount {
		// At most every countEvery, by every instance: with thousands waiting, one
		// listing per thousand, reading keys only.
		delta0 := st.snapshot()
		if n, err := q.count(ctx, st.dir); err == nil {
			st.counts(n, delta0)
		}
	}
	return out, next, nil
}

// snapshot is the delta before a listing that counts.
func (st *s3Target) snapshot() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.delta
}

// counts records that a listing begun at delta0 found n entries: what this
// instance added or removed since is on top of that.
func (st *s3Target) counts(n int, delta0 int64) {
	st.mu.Lock()
	st.base, st.delta, st.counted = int64(n), st.delta-delta0, time.Now()
	st.mu.Unlock()
}

// skip says whether the object at key, in the version etag, need not be read: this
// instance removed it, or saw it claimed by another with a claim that lasts past now.
func (st *s3Target) skip(key, etag string, now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	h, ok := st.held[key]
	return st.gone[key] || ok && h.etag == etag && h.until.After(now)
}

// removed notes that this instance removed key.
func (st *s3Target) removed(key string) {
	st.mu.Lock()
	st.gone[key] = true
	st.mu.Unlock()
}

// claim reads the entry at key and, unless another instance holds it, rewrites it
// with this instance's claim, on condition that it is still the version read
// (If-Match): of instances claiming at once, one wins, and the others get 412.
func (q *s3Queue) claim(ctx context.Context, t *target, st *s3Target, key string, now time.Time) (item, bool, error) {
	got, err := q.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &q.bucket, Key: &key})
	if isNotFound(err) {
		return item{}, false, nil // delivered, or moved, since the listing
	}
	if err != nil {
		return item{}, false, err
	}
	raw, err := io.ReadAll(io.LimitReader(got.Body, maxObject+1))
	got.Body.Close()
	if err != nil {
		return item{}, false, err
	}
	etag := aws.ToString(got.ETag)
	var e s3Entry
	if err := json.Unmarshal(raw, &e); err != nil || len(raw) > maxObject || e.ID == "" {
		// Not written by an outbox. Remembered as held forever, so that it is
		// reported once per version rather than on every look.
		q.log.Error("NotifyOutboxError", "notify", t.Name, "key", key, "error", "an object that is not an entry of the outbox; it is left alone")
		st.hold(key, etag, time.Unix(1<<40, 0))
		return item{}, false, nil
	}
	if e.ClaimedBy != "" && e.ClaimedBy != q.instance && e.ClaimedUntil.After(now) {
		st.hold(key, etag, e.ClaimedUntil)
		return item{}, false, nil
	}
	e.ClaimedBy, e.ClaimedUntil = q.instance, now.Add(t.Timeout+claimMargin)
	// Not cut short by Close: a claim that may or may not have been written could
	// not be given back, and would hold the entry until it ran out.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	etag, err = q.put(wctx, key, e, etag)
	switch {
	case isConflict(err) || isNotFound(err):
		return item{}, false, nil // another instance claimed it, or finished it, first
	case err != nil:
		return item{}, false, err
	}
	return item{key: key, etag: etag, entry: e.entry}, true, nil
}

// maxObject bounds what is read of one object: an entry is its body (the event,
// under a few KiB) in base64 and a few fields.
const maxObject = 1 << 20

func (st *s3Target) hold(key, etag string, until time.Time) {
	st.mu.Lock()
	st.held[key] = heldBy{etag, until}
	st.mu.Unlock()
}

// put writes e at key: over the version ifMatch, or as a new object when ifMatch is
// empty. It returns the new version.
func (q *s3Queue) put(ctx context.Context, key string, e s3Entry, ifMatch string) (string, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{Bucket: &q.bucket, Key: &key, Body: bytes.NewReader(body), ContentType: aws.String("application/json")}
	if ifMatch != "" {
		in.IfMatch = &ifMatch
	} else {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := q.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// delete removes key, on condition that it is still the version ifMatch unless that
// is empty. An object already gone is no error.
func (q *s3Queue) delete(ctx context.Context, key, ifMatch string) error {
	in := &s3.DeleteObjectInput{Bucket: &q.bucket, Key: &key}
	if ifMatch != "" {
		in.IfMatch = &ifMatch
	}
	_, err := q.client.DeleteObject(ctx, in)
	if isNotFound(err) {
		return nil
	}
	return err
}

// done removes the entry this instance claimed. If another instance has claimed it
// since (this one's claim ran out), it is left to that one (412).
func (q *s3Queue) done(ctx context.Context, t *target, it item) error {
	err := q.delete(ctx, it.key, it.etag)
	switch {
	case isConflict(err):
		return errClaimLost
	case err != nil:
		return err
	}
	q.targets[t].removed(it.key)
	q.targets[t].adjust(-1)
	return nil
}

// reschedule moves the entry to the key of its next attempt: the new object is
// written first, unclaimed, then the claimed one removed on condition that it is
// still the version this instance claimed. A crash in between leaves both, so that
// the event is sent twice (at least once, never lost); a claim lost in between
// leaves the entry to the instance that took it, and the new object is removed.
func (q *s3Queue) reschedule(ctx context.Context, t *target, it item, e entry) error {
	st := q.targets[t]
	key := st.key(e)
	if key == it.key { // due again in the same nanosecond
		_, err := q.put(ctx, key, s3Entry{entry: e}, it.etag)
		if isConflict(err) || isNotFound(err) {
			return errClaimLost
		}
		return err
	}
	etag, err := q.put(ctx, key, s3Entry{entry: e}, "")
	created := err == nil
	if err != nil && statusOf(err) != http.StatusPreconditionFailed {
		return err // nothing changed: the claimed entry stays and is retried
	}
	err = q.delete(ctx, it.key, it.etag)
	switch {
	case isConflict(err):
		if created {
			q.delete(ctx, key, etag)
		}
		return errClaimLost
	case err != nil:
		// Both objects stay; the claimed one is attempted again once its claim
		// runs out.
		return fmt.Errorf("moved to %s, but the old entry stays: %w", key, err)
	}
	st.removed(it.key)
	return nil
}

// release rewrites the entry unclaimed, as it was before claim, so that any
// instance can take it at once rather than after the claim.
func (q *s3Queue) release(ctx context.Context, t *target, it item) error {
	_, err := q.put(ctx, it.key, s3Entry{entry: it.entry}, it.etag)
	if isConflict(err) || isNotFound(err) {
		return nil // someone else's already
	}
	return err
}

func (q *s3Queue) close() error { return nil }

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool { return err != nil && statusOf(err) == http.StatusNotFound }

// isConflict reports a conditional write refused because the object is not the
// version named (412), or because another conditional write to it is in flight (AWS
// answers that with 409 ConditionalRequestConflict).
func isConflict(err error) bool {
	switch statusOf(err) {
	case http.StatusPreconditionFailed, http.StatusConflict:
		return true
	}
	return false
}
