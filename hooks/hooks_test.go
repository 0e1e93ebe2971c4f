package hooks

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/sets"
)

// fakeStore keeps records in memory; its data files are real, in a temp dir.
type fakeStore struct {
	dir      string
	records  map[string]uploads.Record
	placed   int
	markErr  error // MarkPlaced fails with it
	intended []string
}

func (f *fakeStore) Record(id string) (uploads.Record, error) {
	rec, ok := f.records[id]
	if !ok {
		return rec, handler.ErrNotFound
	}
	return rec, nil
}
func (f *fakeStore) DataPath(id string) string     { return filepath.Join(f.dir, id) }
func (f *fakeStore) Source(id string) store.Source { return store.Source{Path: f.DataPath(id)} }
func (f *fakeStore) Head(id string, n int) ([]byte, error) {
	data, err := os.ReadFile(f.DataPath(id))
	return data[:min(len(data), n)], err
}
func (f *fakeStore) MarkPlaced(id, name string, thumbs map[string]string) error {
	if f.markErr != nil {
		return uploads.Failure("photos", "could not record the upload's state", "data directory", f.markErr)
	}
	rec := f.records[id]
	rec.State, rec.Name = uploads.Placed, name
	f.records[id] = rec
	f.placed++
	return nil
}
func (f *fakeStore) MarkFailed(id string) error {
	rec := f.records[id]
	rec.State = uploads.Failed
	f.records[id] = rec
	return nil
}
func (f *fakeStore) Intend(id, name string) error {
	f.intended = append(f.intended, name)
	return nil
}
func (f *fakeStore) Reject(id, reason string) error {
	rec := f.records[id]
	rec.State, rec.Reason = uploads.Rejected, reason
	f.records[id] = rec
	return os.Remove(f.DataPath(id))
}

// fakePlacer takes the first candidate, or fails with err (after placing it, when
// afterPlacing: a failed directory sync).
type fakePlacer struct {
	err          error
	afterPlacing bool
	calls        int
	unplaced     []string
}

func (p *fakePlacer) Place(req store.Request) (string, error) {
	p.calls++
	for n := range req.Names {
		if p.err != nil && !p.afterPlacing {
			return "", p.err
		}
		return n, p.err
	}
	return "", errors.New("no names")
}

func (p *fakePlacer) Unplace(name string) error {
	p.unplaced = append(p.unplaced, name)
	return nil
}

const id = "0123456789abcdef0123456789abcdef"

func newSet(t *testing.T, content string, name string) (*Set, *fakeStore, *fakePlacer) {
	t.Helper()
	store := &fakeStore{dir: t.TempDir(), records: map[string]uploads.Record{}}
	os.WriteFile(store.DataPath(id), []byte(content), 0o600)
	store.records[id] = uploads.Record{FileInfo: handler.FileInfo{
		ID: id, Size: int64(len(content)), Offset: int64(len(content)), MetaData: handler.MetaData{"name": name},
	}}
	placer := &fakePlacer{}
	set := &sets.Set{Name: "photos", Extensions: sets.AllowOnly("png", "txt"), MaxSize: 100, Naming: sets.NamingOriginal}
	return &Set{Set: set, Store: store, Placer: placer, Log: hclog.NewNullLogger()}, store, placer
}

func TestPreCreate(t *testing.T) {
	h, _, _ := newSet(t, "", "")
	tests := map[string]struct {
		meta   handler.MetaData
		size   int64
		status int
		says   string
	}{
		"tus-js-client's filename": {handler.MetaData{"filename": "a.png"}, 10, 0, ""},
		"Uppy's name":              {handler.MetaData{"name": "a.PNG", "type": "image/png"}, 10, 0, ""},
		"filename wins over name":  {handler.MetaData{"filename": "a.exe", "name": "a.png"}, 10, 415, `".exe"`},
		"no name":                  {handler.MetaData{"filetype": "image/png"}, 10, 400, `set "photos"`},
		"name of only dots":        {handler.MetaData{"filename": "..."}, 10, 400, "name"},
		"too large":                {handler.MetaData{"filename": "a.png"}, 101, 413, `set "photos"`},
		"disguised extension":      {handler.MetaData{"filename": "a.png.php"}, 10, 415, `".php"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := h.PreCreate(handler.HookEvent{Upload: handler.FileInfo{Size: tc.size, MetaData: tc.meta}})
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var he handler.Error
			if !errors.As(err, &he) || he.HTTPResponse.StatusCode != tc.status || !strings.Contains(he.Message, tc.says) {
				t.Errorf("err = %v, want %d mentioning %s", err, tc.status, tc.says)
			}
		})
	}
}

func TestFinishPlacesOnce(t *testing.T) {
	h, store, placer := newSet(t, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "My Cat.PNG")
	name, err := h.Finish(context.Background(), id)
	if err != nil || name != "My_Cat.png" {
		t.Fatalf("Finish = %q, %v", name, err)
	}
	// A repeated finish (a retried request, a recovery pass) answers the same and
	// places nothing.
	again, err := h.Finish(context.Background(), id)
	if err != nil || again != name || placer.calls != 1 || store.placed != 1 {
		t.Errorf("second Finish = %q, %v; placer called %d times", again, err, placer.calls)
	}
}

func TestFinishRejectsContentMismatch(t *testing.T) {
	h, store, placer := newSet(t, "<html><script>x</script></html>", "x.png")
	_, err := h.Finish(context.Background(), id)
	if !errors.Is(err, sets.ErrContent) || !strings.Contains(err.Error(), "text/html") {
		t.Fatalf("Finish = %v, want a content error naming text/html", err)
	}
	if he := responseError(err).(handler.Error); he.HTTPResponse.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("status %d, want 422", he.HTTPResponse.StatusCode)
	}
	if rec := store.records[id]; rec.State != uploads.Rejected || placer.calls != 0 {
		t.Errorf("record %+v, placer calls %d", rec, placer.calls)
	}
	if _, err := os.Stat(store.DataPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Error("rejected data kept")
	}
}

func TestFinishFailuresAreRetryable(t *testing.T) {
	tests := map[string]struct {
		err          error
		afterPlacing bool // the file was placed, then a step after it failed
		markErr      error
		status       int
		says         string
	}{
		"full destination":       {err: syscall.ENOSPC, status: http.StatusServiceUnavailable, says: `set "photos": the server has no space left`},
		"unwritable destination": {err: &os.PathError{Op: "link", Path: "/secret/path", Err: syscall.EACCES}, status: 500, says: `set "photos": could not place the file: permission denied on the destination`},
		"read-only destination":  {err: &os.PathError{Op: "link", Path: "/secret/path", Err: syscall.EROFS}, status: 500, says: "could not place the file: the destination is read-only"},
		"anything else":          {err: errors.New("/secret/path: weird"), status: 500, says: `set "photos": could not place the file: internal error`},
		"directory sync":         {err: syscall.EIO, afterPlacing: true, status: 500, says: "could not place the file: an I/O error on the destination"},
		"record on a full disk":  {markErr: syscall.ENOSPC, status: http.StatusServiceUnavailable, says: "no space left"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, store, placer := newSet(t, "plain text", "a.txt")
			placer.err, placer.afterPlacing, store.markErr = tc.err, tc.afterPlacing, tc.markErr
			_, err := h.PreFinish(handler.HookEvent{Context: context.Background(), Upload: handler.FileInfo{ID: id}})
			he, ok := err.(handler.Error)
			if !ok || he.HTTPResponse.StatusCode != tc.status || !strings.Contains(he.Message, tc.says) || strings.Contains(he.Message, "secret") {
				t.Errorf("response %d %q, want %d saying %q", he.HTTPResponse.StatusCode, he.Message, tc.status, tc.says)
			}
			// The client was told: only its retry places the upload from now on.
			if store.records[id].State != uploads.Failed {
				t.Errorf("state %q after a failed placement, want failed", store.records[id].State)
			}
			// A file placed before the failure is taken back: the client, told its
			// upload failed, must not find it (nor get a second one by starting over).
			if placedFirst := tc.afterPlacing || tc.markErr != nil; placedFirst != (len(placer.unplaced) == 1) {
				t.Errorf("unplaced %v", placer.unplaced)
			}
		})
	}
}

// requestStore offers each request's own reading of records, as the S3 store does.
type requestStore struct {
	*fakeStore
	seen []context.Context
}

func (s *requestStore) RecordIn(ctx context.Context, id string) (uploads.Record, error) {
	s.seen = append(s.seen, ctx)
	return s.fakeStore.Record(id)
}

func (s *requestStore) Record(string) (uploads.Record, error) {
	return uploads.Record{}, errors.New("read outside the request")
}

// The finish hook reads the record as the request sees it, when the store offers that.
func TestFinishReadsTheRequestsRecord(t *testing.T) {
	h, fs, _ := newSet(t, "plain text", "a.txt")
	rs := &requestStore{fakeStore: fs}
	h.Store = rs
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "this request")
	if _, err := h.PreFinish(handler.HookEvent{Context: ctx, Upload: handler.FileInfo{ID: id}}); err != nil {
		t.Fatal(err)
	}
	if len(rs.seen) != 1 || rs.seen[0].Value(key{}) != "this request" {
		t.Errorf("%d reads through RecordIn, want one with the request's context", len(rs.seen))
	}
}

func TestFileURL(t *testing.T) {
	h, _, _ := newSet(t, "", "")
	if got := h.FileURL("http://h:1", "a b#.png"); got != "http://h:1/files/photos/a%20b%23.png" {
		t.Errorf("FileURL = %q", got)
	}
	h.Set.URL = "https://cdn.example/p/"
	if got := h.FileURL("http://h:1", "é.png"); got != "https://cdn.example/p/%C3%A9.png" {
		t.Errorf("FileURL with the set's url = %q", got)
	}
}

// FuzzMetadata: whatever a client puts in Upload-Metadata, creation either admits the
// upload or refuses it with a 4xx that names the set; it never panics or answers 5xx.
func FuzzMetadata(f *testing.F) {
	for _, seed := range []string{
		"filename YS5wbmc=", "name YS5wbmc=,type aW1hZ2UvcG5n", "filename", "filename !!!", ",,,",
		"filename Li4vLi4vZXRjL3Bhc3N3ZA==", "filename AAA=", "filename 4oCuZ25wLmV4ZQ==", " filename  YS5wbmc= ",
	} {
		f.Add(seed, int64(10))
	}
	h := &Set{Set: &sets.Set{Name: "photos", Extensions: sets.AllowOnly("png"), MaxSize: 100}, Log: hclog.NewNullLogger()}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		meta := handler.ParseMetadataHeader(header)
		_, _, err := h.PreCreate(handler.HookEvent{Upload: handler.FileInfo{Size: size, MetaData: meta}})
		if err == nil {
			return
		}
		var he handler.Error
		if !errors.As(err, &he) || he.HTTPResponse.StatusCode < 400 || he.HTTPResponse.StatusCode >= 500 || !strings.Contains(he.Message, `set "photos"`) {
			t.Errorf("metadata %q: %v", header, err)
		}
	})
}
