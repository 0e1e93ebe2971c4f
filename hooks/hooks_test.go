package hooks

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/diskstore"
	"github.com/uploadsets/uploadsets/sets"
)

// fakeStore keeps records in memory; its data files are real, in a temp dir.
type fakeStore struct {
	dir     string
	records map[string]diskstore.Record
	placed  int
}

func (f *fakeStore) Record(id string) (diskstore.Record, error) {
	rec, ok := f.records[id]
	if !ok {
		return rec, handler.ErrNotFound
	}
	return rec, nil
}
func (f *fakeStore) DataPath(id string) string { return filepath.Join(f.dir, id) }
func (f *fakeStore) MarkPlaced(id, name, url string) error {
	rec := f.records[id]
	rec.State, rec.Name, rec.URL = diskstore.Placed, name, url
	f.records[id] = rec
	f.placed++
	return nil
}
func (f *fakeStore) Reject(id, reason string) error {
	rec := f.records[id]
	rec.State, rec.Reason = diskstore.Rejected, reason
	f.records[id] = rec
	return os.Remove(f.DataPath(id))
}

// fakePlacer takes the first candidate, or fails with err.
type fakePlacer struct {
	err   error
	calls int
}

func (p *fakePlacer) Place(ctx context.Context, src string, names iter.Seq[string]) (string, error) {
	p.calls++
	if p.err != nil {
		return "", p.err
	}
	for n := range names {
		return n, nil
	}
	return "", errors.New("no names")
}

const id = "0123456789abcdef0123456789abcdef"

func newSet(t *testing.T, content string, name string) (*Set, *fakeStore, *fakePlacer) {
	t.Helper()
	store := &fakeStore{dir: t.TempDir(), records: map[string]diskstore.Record{}}
	os.WriteFile(store.DataPath(id), []byte(content), 0o600)
	store.records[id] = diskstore.Record{FileInfo: handler.FileInfo{
		ID: id, Size: int64(len(content)), Offset: int64(len(content)), MetaData: handler.MetaData{"name": name},
	}}
	placer := &fakePlacer{}
	set := &sets.Set{Name: "photos", Extensions: sets.AllowOnly("png", "txt"), MaxSize: 100, Naming: sets.NamingOriginal}
	return &Set{Set: set, Store: store, Placer: placer, PublicURL: "https://up.example", Log: hclog.NewNullLogger()}, store, placer
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
	name, url, err := h.Finish(context.Background(), id, "https://up.example")
	if err != nil || name != "My_Cat.png" || url != "https://up.example/files/photos/My_Cat.png" {
		t.Fatalf("Finish = %q, %q, %v", name, url, err)
	}
	// A repeated finish (a retried request, a recovery pass) answers the same and
	// places nothing.
	again, _, err := h.Finish(context.Background(), id, "https://other.example")
	if err != nil || again != name || placer.calls != 1 || store.placed != 1 {
		t.Errorf("second Finish = %q, %v; placer called %d times", again, err, placer.calls)
	}
}

func TestFinishRejectsContentMismatch(t *testing.T) {
	h, store, placer := newSet(t, "<html><script>x</script></html>", "x.png")
	_, _, err := h.Finish(context.Background(), id, "")
	if !errors.Is(err, sets.ErrContent) || !strings.Contains(err.Error(), "text/html") {
		t.Fatalf("Finish = %v, want a content error naming text/html", err)
	}
	if he := responseError(err).(handler.Error); he.HTTPResponse.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("status %d, want 422", he.HTTPResponse.StatusCode)
	}
	if rec := store.records[id]; rec.State != diskstore.Rejected || placer.calls != 0 {
		t.Errorf("record %+v, placer calls %d", rec, placer.calls)
	}
	if _, err := os.Stat(store.DataPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Error("rejected data kept")
	}
}

func TestFinishFailuresAreRetryable(t *testing.T) {
	tests := map[string]struct {
		err    error
		status int
	}{
		"full destination": {syscall.ENOSPC, http.StatusServiceUnavailable},
		"anything else":    {errors.New("/secret/path: permission denied"), http.StatusInternalServerError},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, store, placer := newSet(t, "plain text", "a.txt")
			placer.err = tc.err
			_, _, err := h.Finish(context.Background(), id, "")
			he, ok := responseError(err).(handler.Error)
			if !ok || he.HTTPResponse.StatusCode != tc.status || strings.Contains(he.Message, "secret") {
				t.Errorf("response %+v for %v", he, tc.err)
			}
			if store.records[id].State != diskstore.Receiving {
				t.Error("a failed placement changed the upload's state")
			}
		})
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
