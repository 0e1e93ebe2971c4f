//go:build linux

package s3uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

const chunk = 256 << 10 // below S3's 5 MiB part minimum: every byte waits in .part

// An upload begun on one instance resumes on another that shares only the bucket,
// in PATCHes below the part minimum, and ends as one object holding every byte.
func TestUploadResumesOnAnotherInstance(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	first := b.instance(t, config{})
	second := b.instance(t, config{})
	data := randomBytes(5*chunk+1234, 1)

	id := first.create(t, len(data))
	for off := 0; off < 3*chunk; off += chunk {
		first.mustPatch(t, id, off, data[off:off+chunk])
	}
	b.wantKeys(t, id+".info", id+".part", id+".record")
	if n := b.multipartUploads(t); n != 1 {
		t.Errorf("%d multipart uploads, want 1", n)
	}

	// The second instance knows only what is in the bucket.
	if got := second.offset(t, id); got != 3*chunk {
		t.Fatalf("second instance: offset %d, want %d", got, 3*chunk)
	}
	rec, err := second.store.Record(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != id || rec.Offset != 3*chunk || rec.Size != int64(len(data)) || rec.MetaData["filename"] != "photo.jpg" || rec.Created.IsZero() {
		t.Errorf("second instance's record: %+v", rec)
	}
	for off := 3 * chunk; off < len(data); off += chunk {
		second.mustPatch(t, id, off, data[off:min(off+chunk, len(data))])
	}

	b.wantKeys(t, id, id+".info", id+".record")
	if n := b.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left, want 0", n)
	}
	bucket, key, size, err := first.store.Object(id)
	if err != nil {
		t.Fatal(err)
	}
	if bucket != b.name || key != b.prefix+id || size != int64(len(data)) {
		t.Errorf("Object = %s, %s, %d", bucket, key, size)
	}
	if got := b.get(t, key); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("final object: %d bytes that differ from the %d sent", len(got), len(data))
	}
	for _, in := range []*instance{first, second} {
		rec, err := in.store.Record(id)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Unplaced() || rec.Offset != int64(len(data)) || rec.ReportedOffset() != int64(len(data)-1) {
			t.Errorf("record after the last byte: state %q, offset %d of %d", rec.State, rec.Offset, rec.Size)
		}
	}
	if first.finished() != 0 || second.finished() != 1 {
		t.Errorf("finish hook ran %d and %d times, want 0 and 1", first.finished(), second.finished())
	}
	if ids, err := first.store.IDs(); err != nil || !slices.Equal(ids, []string{id}) {
		t.Errorf("IDs() = %v, %v", ids, err)
	}
	if got := first.eventsSoFar(); !slices.Equal(got, []string{uploads.Created}) {
		t.Errorf("events %v", got)
	}
}

// A POST may carry the whole body; a zero-byte upload is complete at creation, and
// has no byte to hold back.
func TestCreationWithUpload(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	in := b.instance(t, config{})
	data := randomBytes(1000, 12)
	resp := tusDo(t, http.MethodPost, in.url, map[string]string{
		"Upload-Length": strconv.Itoa(len(data)), "Content-Type": "application/offset+octet-stream",
		"Upload-Checksum": sha256Header(data),
	}, data)
	if resp.status != http.StatusCreated || resp.header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("POST with the body: %d, Upload-Offset %q: %s", resp.status, resp.header.Get("Upload-Offset"), resp.body)
	}
	id := path.Base(resp.header.Get("Location"))
	if got := b.get(t, b.prefix+id); !bytes.Equal(got, data) {
		t.Errorf("final object: %d bytes that differ", len(got))
	}

	empty := in.create(t, 0)
	if got := in.offset(t, empty); got != 0 {
		t.Errorf("offset %d", got)
	}
	if head, err := in.store.Head(empty, 512); err != nil || len(head) != 0 {
		t.Errorf("Head = %q, %v", head, err)
	}
	if _, _, size, err := in.store.Object(empty); err != nil || size != 0 {
		t.Errorf("Object: size %d, %v", size, err)
	}
	if in.finished() != 2 {
		t.Errorf("finish hook ran %d times, want 2", in.finished())
	}
}

// The client's metadata live in the record, as sent: none of them reach S3, where
// non-ASCII would be mangled, more than 2 KiB refused, and filetype would become
// the object's Content-Type.
func TestMetadataStayInRecord(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	in := b.instance(t, config{})
	long := strings.Repeat("x", 3000)
	md := "filename " + b64("Menü.jpg") + ",filetype " + b64("text/html") + ",a:b " + b64(long)
	resp := tusDo(t, http.MethodPost, in.url, map[string]string{"Upload-Length": "10", "Upload-Metadata": md}, nil)
	if resp.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.status, resp.body)
	}
	id := path.Base(resp.header.Get("Location"))
	in.mustPatch(t, id, 0, []byte("0123456789"))
	rec, err := in.store.Record(id)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"filename": "Menü.jpg", "filetype": "text/html", "a:b": long}; !maps.Equal(rec.MetaData, want) {
		t.Errorf("metadata %v", rec.MetaData)
	}
	head, err := in.store.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(b.name), Key: aws.String(b.prefix + id)})
	if err != nil {
		t.Fatal(err)
	}
	if len(head.Metadata) != 0 || aws.ToString(head.ContentType) == "text/html" {
		t.Errorf("final object: metadata %v, Content-Type %q", head.Metadata, aws.ToString(head.ContentType))
	}
}

// The finish hook reads the record the completing PATCH holds, with no request to
// S3, until a change of state; anything else reads the bucket.
func TestFinishReadsRecordOnce(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	data := randomBytes(1000, 4)
	var in *instance
	type read struct {
		rec      Record
		requests int64
	}
	var reads []read
	readIn := func(ctx context.Context, id string) {
		before := in.requests.Load()
		rec, err := in.store.RecordIn(ctx, id)
		if err != nil {
			t.Error(err)
		}
		reads = append(reads, read{rec, in.requests.Load() - before})
	}
	in = b.instance(t, config{finish: func(ev handler.HookEvent) error {
		id := ev.Upload.ID
		ctx := context.WithoutCancel(ev.Context) // as the hooks pass it on
		readIn(ctx, id)
		if err := in.store.Intend(id, "photo.jpg"); err != nil {
			return err
		}
		readIn(ctx, id)
		return nil
	}})
	id := in.upload(t, data, len(data))
	if len(reads) != 2 {
		t.Fatalf("%d reads in the finish hook", len(reads))
	}
	first := reads[0]
	if first.requests != 0 {
		t.Errorf("the first read in the finish hook made %d requests to S3, want none", first.requests)
	}
	if r := first.rec; !r.Unplaced() || r.ID != id || r.Offset != int64(len(data)) || r.MetaData["filename"] != "photo.jpg" || r.Created.IsZero() {
		t.Errorf("the first read: %+v", r)
	}
	if r := reads[1]; r.requests == 0 || r.rec.Intended != "photo.jpg" || !r.rec.Unplaced() {
		t.Errorf("after Intend, a read with %d requests: %+v", r.requests, r.rec)
	}
	// Another request holds nothing of it.
	readIn(WithRequest(t.Context()), id)
	if r := reads[2]; r.requests == 0 || r.rec.Intended != "photo.jpg" || !r.rec.Unplaced() {
		t.Errorf("in another request, a read with %d requests: %+v", r.requests, r.rec)
	}
}

// The hooks' state changes are in the bucket: another instance sees each at once.
func TestStateChangesPersist(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	first := b.instance(t, config{})
	second := b.instance(t, config{})
	data := randomBytes(chunk+10, 2)
	id := first.upload(t, data, chunk)

	if err := first.store.Intend(id, "photo.jpg"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := second.store.Record(id); rec.Intended != "photo.jpg" || rec.State != Receiving {
		t.Errorf("after Intend: %q, %q", rec.State, rec.Intended)
	}
	if err := first.store.MarkFailed(id); err != nil {
		t.Fatal(err)
	}
	if rec, _ := second.store.Record(id); rec.State != Failed || rec.Intended != "photo.jpg" {
		t.Errorf("after MarkFailed: %q, %q", rec.State, rec.Intended)
	}
	// Failed is still unplaced: the client is to send the last byte again.
	if got := second.offset(t, id); got != len(data)-1 {
		t.Errorf("offset of a failed upload %d, want %d", got, len(data)-1)
	}
	thumbs := map[string]string{"small": "thumbs/small/photo.jpg"}
	if err := first.store.MarkPlaced(id, "photo.jpg", thumbs); err != nil {
		t.Fatal(err)
	}
	rec, err := second.store.Record(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != Placed || rec.Name != "photo.jpg" || !maps.Equal(rec.Thumbs, thumbs) || rec.Offset != int64(len(data)) || rec.ReportedOffset() != int64(len(data)) {
		t.Errorf("after MarkPlaced: %+v", rec)
	}
	// Recorded first, then the data removed: only the record stays.
	b.wantKeys(t, id+".record")
	if got := second.offset(t, id); got != len(data) {
		t.Errorf("offset of a placed upload %d, want %d", got, len(data))
	}
	if rec, d, err := second.store.Open(id); err != nil || d != nil || rec.Name != "photo.jpg" {
		t.Errorf("Open of a placed upload: %q, %v, %v", rec.Name, d, err)
	}
	if _, _, _, err := second.store.Object(id); !errors.Is(err, handler.ErrNotFound) {
		t.Errorf("Object of a placed upload: %v", err)
	}
	if resp := tusDo(t, http.MethodDelete, second.url+id, nil, nil); resp.status != http.StatusForbidden || !strings.Contains(resp.body, `"photos"`) {
		t.Errorf("DELETE of a placed upload: %d %s", resp.status, resp.body)
	}
	if resp := second.patch(t, id, len(data), nil, nil); resp.status != http.StatusNoContent {
		t.Errorf("repeated final PATCH: %d %s", resp.status, resp.body)
	}

	// Rejected: the data goes through s3store, the record stays with the reason.
	other := first.upload(t, randomBytes(1000, 3), chunk)
	if err := first.store.Reject(other, "not a JPEG"); err != nil {
		t.Fatal(err)
	}
	rec, err = second.store.Record(other)
	if err != nil || rec.State != Rejected || rec.Reason != "not a JPEG" {
		t.Errorf("after Reject: %+v, %v", rec, err)
	}
	b.wantKeys(t, id+".record", other+".record")
	if resp := tusDo(t, http.MethodHead, second.url+other, nil, nil); resp.status != http.StatusGone {
		t.Errorf("HEAD of a rejected upload: %d", resp.status)
	}
	if _, _, err := second.store.Open(other); err == nil || !strings.Contains(err.Error(), "not a JPEG") {
		t.Errorf("Open of a rejected upload: %v", err)
	}
}

// A record changed by another instance since it was read is read again and the
// change applied to that version: neither change is lost.
func TestRecordUpdatesDoNotLoseChanges(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	first := b.instance(t, config{})
	second := b.instance(t, config{})
	id := first.upload(t, randomBytes(100, 4), chunk)
	ctx := t.Context()
	stale, err := first.store.getRecord(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.store.Intend(id, "photo.jpg"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	if _, err := first.store.update(ctx, id, &stale, true, func(o *object) bool {
		calls++
		o.State = Failed
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("change applied %d times, want 2 (the stale version refused)", calls)
	}
	if rec, _ := second.store.Record(id); rec.State != Failed || rec.Intended != "photo.jpg" {
		t.Errorf("record %q, intended %q: a change was lost", rec.State, rec.Intended)
	}
	// A create over an existing record is refused.
	if _, err := first.store.putRecord(ctx, stale.obj, ""); !isConflict(err) {
		t.Errorf("creating a record that exists: %v", err)
	}
}

func TestHeadAndOpen(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	in := b.instance(t, config{})
	data := randomBytes(3*chunk+77, 5)
	id := in.create(t, len(data))
	in.mustPatch(t, id, 0, data[:chunk])

	// Still receiving: its bytes are parts S3 cannot read back.
	if _, _, err := in.store.Open(id); err == nil || !strings.Contains(err.Error(), "ERR_INCOMPLETE_UPLOAD") {
		t.Errorf("Open while receiving: %v", err)
	} else if he := (handler.Error{}); !errors.As(err, &he) || he.HTTPResponse.StatusCode != http.StatusConflict {
		t.Errorf("Open while receiving: %v, want a 409", err)
	}
	if resp := tusDo(t, http.MethodGet, in.url+id, nil, nil); resp.status != http.StatusConflict {
		t.Errorf("GET while receiving: %d %s", resp.status, resp.body)
	}
	for off := chunk; off < len(data); off += chunk {
		in.mustPatch(t, id, off, data[off:min(off+chunk, len(data))])
	}

	for _, n := range []int{1, 512, len(data), len(data) + 100} {
		head, err := in.store.Head(id, n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(head, data[:min(n, len(data))]) {
			t.Errorf("Head(%d): %d bytes that are not the first", n, len(head))
		}
	}

	rec, d, err := in.store.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if rec.ReportedOffset() != int64(len(data)-1) {
		t.Errorf("ReportedOffset %d", rec.ReportedOffset())
	}
	// Read as the server serves it (32 KiB at a time in one GET), then out of order.
	got, err := io.ReadAll(io.NewSectionReader(d, 0, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, %v", len(got), err)
	}
	p := make([]byte, 100)
	if n, err := d.ReadAt(p, 1000); n != 100 || err != nil || !bytes.Equal(p, data[1000:1100]) {
		t.Errorf("ReadAt(1000): %d, %v", n, err)
	}
	if n, err := d.ReadAt(p, int64(len(data)-10)); n != 10 || err != io.EOF || !bytes.Equal(p[:10], data[len(data)-10:]) {
		t.Errorf("ReadAt at the end: %d, %v", n, err)
	}
	if resp := tusDo(t, http.MethodGet, in.url+id, nil, nil); resp.status != http.StatusOK || resp.body != string(data[:len(data)-1]) {
		t.Errorf("GET through tusd: %d, %d bytes", resp.status, len(resp.body))
	}
}

// A PATCH whose bytes do not match its Upload-Checksum keeps nothing.
func TestChecksum(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	in := b.instance(t, config{})
	data := randomBytes(3*chunk, 6)
	id := in.create(t, len(data))

	if resp := in.patch(t, id, 0, data[:chunk], map[string]string{"Upload-Checksum": sha256Header(data[:chunk])}); resp.status != http.StatusNoContent {
		t.Fatalf("PATCH with a matching checksum: %d %s", resp.status, resp.body)
	}
	part := b.get(t, b.prefix+id+".part")
	wrong := sha256Header(data[:10])
	for name, body := range map[string][]byte{
		"wrong bytes":    data[chunk : 2*chunk],
		"too few bytes":  data[chunk : chunk+10],
		"one byte short": data[:9],
	} {
		resp := in.patch(t, id, chunk, body, map[string]string{"Upload-Checksum": wrong})
		if resp.status != 460 || !strings.Contains(resp.body, "ERR_CHECKSUM_MISMATCH") || !strings.Contains(resp.body, `"photos"`) {
			t.Errorf("%s: %d %s", name, resp.status, resp.body)
		}
		if got := in.offset(t, id); got != chunk {
			t.Errorf("%s: offset %d after a mismatch, want %d", name, got, chunk)
		}
	}
	if got := b.get(t, b.prefix+id+".part"); !bytes.Equal(got, part) {
		t.Errorf("the parked bytes changed: %d bytes, were %d", len(got), len(part))
	}
	in.mustPatch(t, id, chunk, data[chunk:2*chunk])
	if resp := in.patch(t, id, 2*chunk, data[2*chunk:], map[string]string{"Upload-Checksum": sha256Header(data[2*chunk:])}); resp.status != http.StatusNoContent {
		t.Fatalf("last PATCH with a matching checksum: %d %s", resp.status, resp.body)
	}
	if got := b.get(t, b.prefix+id); !bytes.Equal(got, data) {
		t.Errorf("final object: %d bytes that differ", len(got))
	}
	// The withheld byte is checked too, and then thrown away.
	last := data[len(data)-1:]
	if resp := in.patch(t, id, len(data)-1, last, map[string]string{"Upload-Checksum": wrong}); resp.status != 460 {
		t.Errorf("withheld byte with a wrong checksum: %d %s", resp.status, resp.body)
	}
	if resp := in.patch(t, id, len(data)-1, last, map[string]string{"Upload-Checksum": sha256Header(last)}); resp.status != http.StatusNoContent {
		t.Errorf("withheld byte with its checksum: %d %s", resp.status, resp.body)
	}
	if left := spoolFiles(t, in.store.tempDir); len(left) > 0 {
		t.Errorf("left in the temp dir: %v", left)
	}
}

// An upload of unknown length never stores a byte past its limit.
func TestDeferredLengthLimit(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	const limit = chunk + 1000
	in := b.instance(t, config{opts: func(o *Options) { o.MaxSize = 10 * chunk }, create: func(handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
		// A token's lower limit, as the creation hook hands it over.
		return handler.HTTPResponse{}, handler.FileInfoChanges{Storage: map[string]string{uploads.LimitKey: strconv.Itoa(limit)}}, nil
	}})
	data := randomBytes(2*chunk, 7)

	t.Run("append crossing the limit", func(t *testing.T) {
		id := in.create(t, -1)
		in.mustPatch(t, id, 0, data[:chunk])
		resp := in.patch(t, id, chunk, data[chunk:2*chunk], nil)
		if resp.status != http.StatusRequestEntityTooLarge || !strings.Contains(resp.body, `set "photos"`) {
			t.Errorf("PATCH past the limit: %d %s", resp.status, resp.body)
		}
		if got := in.offset(t, id); got != limit {
			t.Errorf("offset %d, want the limit %d", got, limit)
		}
		if got := b.get(t, b.prefix+id+".part"); !bytes.Equal(got, data[:limit]) {
			t.Errorf("%d bytes stored, want the %d up to the limit", len(got), limit)
		}
		// Declaring more than the limit is refused; declaring the limit completes it.
		if resp := in.patch(t, id, limit, nil, map[string]string{"Upload-Length": strconv.Itoa(limit + 1)}); resp.status != http.StatusRequestEntityTooLarge {
			t.Errorf("declaring past the limit: %d %s", resp.status, resp.body)
		}
		if resp := in.patch(t, id, limit, nil, map[string]string{"Upload-Length": strconv.Itoa(limit)}); resp.status != http.StatusNoContent {
			t.Fatalf("declaring the limit: %d %s", resp.status, resp.body)
		}
		if got := b.get(t, b.prefix+id); !bytes.Equal(got, data[:limit]) {
			t.Errorf("final object: %d bytes, want the %d sent within the limit", len(got), limit)
		}
		if rec, _ := in.store.Record(id); rec.SizeIsDeferred || rec.Size != limit || !rec.Unplaced() {
			t.Errorf("record: %+v", rec)
		}
	})

	t.Run("checksummed append crossing the limit", func(t *testing.T) {
		id := in.create(t, -1)
		in.mustPatch(t, id, 0, data[:chunk])
		body := data[chunk : 2*chunk]
		resp := in.patch(t, id, chunk, body, map[string]string{"Upload-Checksum": sha256Header(body)})
		if resp.status != http.StatusRequestEntityTooLarge {
			t.Errorf("PATCH past the limit: %d %s", resp.status, resp.body)
		}
		if got := in.offset(t, id); got != chunk {
			t.Errorf("offset %d, want %d: a checksummed request is kept whole or not at all", got, chunk)
		}
	})
}

// The last byte of a complete upload that is not placed is held back from HEAD; the
// client's retry of it is read and thrown away, and runs placement again.
func TestWithheldLastByte(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	first := b.instance(t, config{})
	second := b.instance(t, config{})
	data := randomBytes(chunk+5, 8)
	id := first.upload(t, data, chunk)
	if first.finished() != 1 {
		t.Fatalf("finish hook ran %d times", first.finished())
	}
	if got := second.offset(t, id); got != len(data)-1 {
		t.Fatalf("HEAD: %d, want %d", got, len(data)-1)
	}
	// Another byte than the one sent: it must not reach the object.
	wrong := []byte{data[len(data)-1] ^ 0xff}
	resp := second.patch(t, id, len(data)-1, wrong, nil)
	if resp.status != http.StatusNoContent || resp.header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("PATCH of the last byte: %d, Upload-Offset %q: %s", resp.status, resp.header.Get("Upload-Offset"), resp.body)
	}
	if second.finished() != 1 {
		t.Errorf("the retry ran the finish hook %d times, want 1", second.finished())
	}
	if got := b.get(t, b.prefix+id); !bytes.Equal(got, data) {
		t.Error("the final object changed")
	}
	if resp := second.patch(t, id, len(data)-2, data[len(data)-2:], nil); resp.status != http.StatusConflict {
		t.Errorf("PATCH behind the reported offset: %d", resp.status)
	}
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	first := b.instance(t, config{})
	second := b.instance(t, config{})
	data := randomBytes(2*chunk, 9)

	partial := first.create(t, len(data))
	first.mustPatch(t, partial, 0, data[:chunk])
	complete := first.upload(t, data, chunk)
	placed := first.upload(t, data[:100], chunk)
	if err := first.store.MarkPlaced(placed, "photo.jpg", nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{partial, complete} {
		if resp := tusDo(t, http.MethodDelete, second.url+id, nil, nil); resp.status != http.StatusNoContent {
			t.Errorf("DELETE: %d %s", resp.status, resp.body)
		}
		if resp := tusDo(t, http.MethodHead, first.url+id, nil, nil); resp.status != http.StatusNotFound {
			t.Errorf("HEAD after DELETE: %d", resp.status)
		}
	}
	b.wantKeys(t, placed+".record")
	if n := b.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
	if got := second.eventsSoFar(); !slices.Equal(got, []string{uploads.Terminated, uploads.Terminated}) {
		t.Errorf("events %v", got)
	}
}

// A PATCH of more than the part minimum becomes a part of its own; the bytes after it
// wait in .part, and the last PATCH makes them the last part.
func TestPartsAndParkedBytes(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	first := b.instance(t, config{})
	second := b.instance(t, config{})
	const big = 6 << 20
	data := randomBytes(big+2*chunk, 14)
	id := first.create(t, len(data))
	first.mustPatch(t, id, 0, data[:big])
	b.wantKeysOf(t, id, id+".info", id+".record")
	body := data[big : big+chunk]
	if resp := second.patch(t, id, big, body, map[string]string{"Upload-Checksum": sha256Header(body)}); resp.status != http.StatusNoContent {
		t.Fatalf("checksummed PATCH: %d %s", resp.status, resp.body)
	}
	b.wantKeysOf(t, id, id+".info", id+".part", id+".record")
	first.mustPatch(t, id, big+chunk, data[big+chunk:])
	head, err := first.store.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(b.name), Key: aws.String(b.prefix + id)})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(etag, `-2"`) {
		t.Errorf("ETag %s, want one of 2 parts", etag)
	}
	if got := b.get(t, b.prefix+id); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("final object: %d bytes that differ from the %d sent", len(got), len(data))
	}
}
