package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/uploadsets/uploadsets/internal/durable/powercut"
	"github.com/uploadsets/uploadsets/sets"
)

const powercutConfig = `
data_dir = "./data"
uploads_default_dest = "./uploads"
set "files" {
  extensions = all
  max_size   = "4MiB"
}
`

// ack is what a client was told of one upload: the offset it may resume from, and the
// name it was placed under once complete.
type ack struct {
	url    string // path of the upload URL
	data   []byte
	offset int64
	name   string
}

// Power is cut at random moments while clients upload, some in one request
// (creation-with-upload), some in several PATCHes; after each cut, a server started on
// what the disk would hold finds everything a client was told: every upload created,
// every byte acknowledged (HEAD, and the bytes served), every upload placed, under its
// name, whole, once. Only the sync points make this hold: kill -9 would keep the page
// cache, and this test drops whatever no sync covered.
func TestNothingAcknowledgedIsLostToAPowerCut(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(powercutConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	sim := powercut.Start(t, dir)
	srv := startPowercutServer(t, dir)
	sim.Trust(filepath.Join(dir, "data", "uploads.db"), func(w io.Writer) error {
		_, err := srv.records.WriteTo(w)
		return err
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	var mu sync.Mutex
	acks := map[string]*ack{}
	var sent sync.Map // name → content, of every upload begun
	tell := func(a *ack) {
		mu.Lock()
		acks[a.url] = &ack{url: a.url, data: a.data, offset: a.offset, name: a.name}
		mu.Unlock()
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 10_000; i++ {
				name := fmt.Sprintf("w%d-%d.bin", w, i)
				data := make([]byte, 1+mrand.IntN(200<<10))
				rand.Read(data)
				sent.Store(name, data)
				uploadForPowercut(ctx, t, ts.URL, name, data, tell)
			}
		})
	}
	type cut struct {
		img  string
		acks []ack
	}
	var cuts []cut
	for range 5 {
		time.Sleep(time.Duration(100+mrand.IntN(150)) * time.Millisecond)
		var c cut
		c.img = sim.Cut(t, func() {
			mu.Lock()
			for _, a := range acks {
				c.acks = append(c.acks, *a)
			}
			mu.Unlock()
		})
		cuts = append(cuts, c)
	}
	stop()
	wg.Wait()

	for i, c := range cuts {
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkAfterPowercut(t, c.img, c.acks, &sent) })
	}
}

func startPowercutServer(t *testing.T, dir string) *Server {
	t.Helper()
	cfg, diags := sets.Load(filepath.Join(dir, "config.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// uploadForPowercut sends one upload and tells every acknowledgment it gets.
func uploadForPowercut(ctx context.Context, t *testing.T, base, name string, data []byte, tell func(*ack)) {
	a := &ack{data: data}
	do := func(method, url string, body []byte, hdr map[string]string) (*http.Response, bool) {
		req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		req.Header.Set("Tus-Resumable", "1.0.0")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/offset+octet-stream")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, false
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, true
	}
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte(name))
	var first []byte
	if mrand.IntN(2) == 0 {
		first = data // creation-with-upload of all of it
	}
	res, ok := do(http.MethodPost, base+"/uploads/files/", first, map[string]string{"Upload-Length": strconv.Itoa(len(data)), "Upload-Metadata": meta})
	if !ok || res.StatusCode != http.StatusCreated {
		return
	}
	loc := res.Header.Get("Location")
	a.url = strings.TrimPrefix(loc, base)
	if !strings.HasPrefix(loc, base) {
		t.Errorf("Location %q is not on %s", loc, base)
		return
	}
	a.offset, _ = strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	a.name = res.Header.Get("Upload-File-Name")
	tell(a)
	for a.name == "" && ctx.Err() == nil {
		end := min(int(a.offset)+1+mrand.IntN(100<<10), len(data))
		res, ok := do(http.MethodPatch, loc, data[a.offset:end], map[string]string{"Upload-Offset": strconv.FormatInt(a.offset, 10)})
		if !ok || res.StatusCode != http.StatusNoContent {
			return
		}
		a.offset, _ = strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
		a.name = res.Header.Get("Upload-File-Name")
		tell(a)
	}
}

func checkAfterPowercut(t *testing.T, img string, acks []ack, sent *sync.Map) {
	srv := startPowercutServer(t, img)
	h := srv.Handler()
	request := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	placed, partial := 0, 0
	for _, a := range acks {
		head := request(http.MethodHead, a.url)
		if head.Code != http.StatusOK {
			t.Errorf("%s, created before the cut: HEAD %d after it", a.url, head.Code)
			continue
		}
		offset, _ := strconv.ParseInt(head.Header().Get("Upload-Offset"), 10, 64)
		name := head.Header().Get("Upload-File-Name")
		if a.name != "" {
			placed++
			if name != a.name || offset != int64(len(a.data)) {
				t.Errorf("%s, placed as %s before the cut: HEAD says offset %d of %d, name %q", a.url, a.name, offset, len(a.data), name)
			}
			if got, err := os.ReadFile(filepath.Join(img, "uploads", "files", a.name)); err != nil || !bytes.Equal(got, a.data) {
				t.Errorf("%s, placed as %s before the cut: the file holds %d bytes of its %d (%v)", a.url, a.name, len(got), len(a.data), err)
			}
			continue
		}
		partial++
		if offset < a.offset {
			t.Errorf("%s: offset %d after the cut, %d acknowledged before it", a.url, offset, a.offset)
			continue
		}
		if name != "" {
			continue // complete and placed at start: checked with the destination
		}
		if get := request(http.MethodGet, a.url); get.Code != http.StatusOK || !bytes.Equal(get.Body.Bytes(), a.data[:offset]) {
			t.Errorf("%s: GET %d serves %d bytes that are not the first %d sent", a.url, get.Code, get.Body.Len(), offset)
		}
	}
	// Whatever the destination holds is one whole upload under its own name (every
	// upload has a name of its own), told or not.
	entries, _ := os.ReadDir(filepath.Join(img, "uploads", "files"))
	for _, e := range entries {
		got, _ := os.ReadFile(filepath.Join(img, "uploads", "files", e.Name()))
		if want, ok := sent.Load(e.Name()); !ok || !bytes.Equal(got, want.([]byte)) {
			t.Errorf("destination holds %s of %d bytes: not an upload sent under that name, whole", e.Name(), len(got))
		}
	}
	t.Logf("cut with %d uploads told placed and %d in progress; %d files in the destination", placed, partial, len(entries))
}
