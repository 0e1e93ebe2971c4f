//go:build linux

// Linux only, as testsrv.S3 is.

package s3uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"golang.org/x/exp/slog"

	"github.com/uploadsets/uploadsets/internal/testsrv"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

const set = "photos"

// bucket is one test's bucket on a gateway of its own, shared by the instances the
// test starts on it.
type bucket struct {
	srv    *testsrv.S3Server
	name   string
	prefix string
}

func newBucket(t testing.TB) bucket {
	t.Helper()
	srv := testsrv.S3(t)
	return bucket{srv: srv, name: srv.Bucket(t, "uploads"), prefix: "partial/" + set + "/"}
}

// instance is one server's view of the bucket: a store with a client of its own, tusd
// composed on it with a locker of its own, served on 127.0.0.1.
type instance struct {
	store  *Store
	locker *memorylocker.MemoryLocker
	url    string // the tus endpoint, ending in /files/

	requests atomic.Int64 // made to S3

	mu       sync.Mutex
	events   []string // Changed's kinds, in order
	finishes int      // PreFinishResponseCallback's calls
}

type config struct {
	opts   func(*Options)
	create func(handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error)
	finish func(handler.HookEvent) error // run by PreFinishResponseCallback, as the hooks' placement would be
}

func (b bucket) instance(t testing.TB, cfg config) *instance {
	t.Helper()
	in := &instance{locker: memorylocker.New()}
	o := Options{
		Set: set, Expire: 2 * time.Hour, MaxSize: 1 << 30, TempDir: t.TempDir(),
		Checksum: testChecksum, Locker: in.locker,
		Changed: func(kind string, rec Record) error {
			in.mu.Lock()
			defer in.mu.Unlock()
			in.events = append(in.events, kind)
			return nil
		},
	}
	if cfg.opts != nil {
		cfg.opts(&o)
	}
	// Every request to S3 is counted, for the benchmarks' figures.
	counted := s3.New(b.srv.Client().Options(), func(o *s3.Options) {
		o.HTTPClient = countingClient{next: o.HTTPClient, n: &in.requests}
	})
	s, err := New(counted, b.name, b.prefix, o)
	if err != nil {
		t.Fatal(err)
	}
	in.store = s
	composer := handler.NewStoreComposer()
	s.UseIn(composer)
	in.locker.UseIn(composer)
	h, err := handler.NewUnroutedHandler(handler.Config{
		BasePath: "/files/", StoreComposer: composer,
		Logger:                  slog.New(slog.NewTextHandler(io.Discard, nil)),
		PreUploadCreateCallback: cfg.create,
		PreFinishResponseCallback: func(ev handler.HookEvent) (handler.HTTPResponse, error) {
			in.mu.Lock()
			in.finishes++
			in.mu.Unlock()
			if cfg.finish != nil {
				return handler.HTTPResponse{}, cfg.finish(ev)
			}
			return handler.HTTPResponse{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /files/", h.PostFile)
	// tusd reads the ID from the path below its base path.
	for method, f := range map[string]http.HandlerFunc{
		http.MethodHead: h.HeadFile, http.MethodPatch: h.PatchFile, http.MethodDelete: h.DelFile, http.MethodGet: h.GetFile,
	} {
		mux.Handle(method+" /files/{id}", http.StripPrefix("/files/", f))
	}
	ts := httptest.NewServer(withRequest(withChecksum(h.Middleware(mux))))
	t.Cleanup(ts.Close)
	in.url = ts.URL + "/files/"
	return in
}

func (in *instance) eventsSoFar() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.events)
}

func (in *instance) finished() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.finishes
}

// The checksum a request's bytes must match travels in its context, as the server's
// does (disk.ExpectChecksum); this one knows sha256 only.
type sumKey struct{}

// withRequest gives each request the room of WithRequest, as the server does.
func withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(WithRequest(r.Context())))
	})
}

func withChecksum(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Upload-Checksum"); h != "" {
			algo, b64, _ := strings.Cut(h, " ")
			sum, err := base64.StdEncoding.DecodeString(b64)
			if algo != "sha256" || err != nil {
				http.Error(w, "bad checksum", http.StatusBadRequest)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), sumKey{}, sum))
		}
		next.ServeHTTP(w, r)
	})
}

func testChecksum(ctx context.Context) (hash.Hash, []byte, bool) {
	sum, ok := ctx.Value(sumKey{}).([]byte)
	if !ok {
		return nil, nil, false
	}
	return sha256.New(), sum, true
}

func sha256Header(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256 " + base64.StdEncoding.EncodeToString(sum[:])
}

type result struct {
	status int
	header http.Header
	body   string
}

func tusDo(t testing.TB, method, url string, header map[string]string, body []byte) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

// create POSTs an upload of length bytes (deferred when length < 0) and returns its ID.
func (in *instance) create(t testing.TB, length int) string {
	t.Helper()
	h := map[string]string{"Upload-Metadata": "filename " + b64("photo.jpg") + ",filetype " + b64("image/jpeg")}
	if length < 0 {
		h["Upload-Defer-Length"] = "1"
	} else {
		h["Upload-Length"] = strconv.Itoa(length)
	}
	resp := tusDo(t, http.MethodPost, in.url, h, nil)
	if resp.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.status, resp.body)
	}
	id := path.Base(resp.header.Get("Location"))
	if !uploads.ValidID(id) {
		t.Fatalf("upload ID %q is not the store's shape", id)
	}
	return id
}

// patch sends body at offset and returns the response; extra headers are added.
func (in *instance) patch(t testing.TB, id string, offset int, body []byte, extra map[string]string) result {
	t.Helper()
	h := map[string]string{"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream"}
	for k, v := range extra {
		h[k] = v
	}
	return tusDo(t, http.MethodPatch, in.url+id, h, body)
}

// mustPatch sends body at offset and wants it all acknowledged.
func (in *instance) mustPatch(t testing.TB, id string, offset int, body []byte) {
	t.Helper()
	resp := in.patch(t, id, offset, body, nil)
	if want := strconv.Itoa(offset + len(body)); resp.status != http.StatusNoContent || resp.header.Get("Upload-Offset") != want {
		t.Fatalf("PATCH at %d: %d, Upload-Offset %q (want %s): %s", offset, resp.status, resp.header.Get("Upload-Offset"), want, resp.body)
	}
}

// offset is what HEAD reports.
func (in *instance) offset(t testing.TB, id string) int {
	t.Helper()
	resp := tusDo(t, http.MethodHead, in.url+id, nil, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("HEAD: %d", resp.status)
	}
	n, err := strconv.Atoi(resp.header.Get("Upload-Offset"))
	if err != nil {
		t.Fatalf("HEAD: Upload-Offset %q", resp.header.Get("Upload-Offset"))
	}
	return n
}

// upload sends data in chunks of at most chunk bytes, all to in.
func (in *instance) upload(t testing.TB, data []byte, chunk int) string {
	t.Helper()
	id := in.create(t, len(data))
	for off := 0; off < len(data); off += chunk {
		in.mustPatch(t, id, off, data[off:min(off+chunk, len(data))])
	}
	return id
}

// keys lists what is under the prefix, the prefix cut off, sorted.
func (b bucket) keys(t testing.TB) []string {
	t.Helper()
	out, err := b.srv.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(b.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range out.Contents {
		got = append(got, strings.TrimPrefix(aws.ToString(o.Key), b.prefix))
	}
	slices.Sort(got)
	return got
}

func (b bucket) wantKeys(t testing.TB, names ...string) {
	t.Helper()
	slices.Sort(names)
	if got := b.keys(t); !slices.Equal(got, names) {
		t.Errorf("objects under %s: %q, want %q", b.prefix, got, names)
	}
}

// wantKeysOf is wantKeys for the objects of one upload.
func (b bucket) wantKeysOf(t testing.TB, id string, names ...string) {
	t.Helper()
	var got []string
	for _, k := range b.keys(t) {
		if strings.HasPrefix(k, id) {
			got = append(got, k)
		}
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("objects of %s: %q, want %q", id, got, names)
	}
}

func (b bucket) multipartUploads(t testing.TB) int {
	t.Helper()
	out, err := b.srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(b.name), Prefix: aws.String(b.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

func (b bucket) get(t testing.TB, key string) []byte {
	t.Helper()
	return getObject(t, b.srv.Client(), b.name, key)
}

func readObject(t testing.TB, s *Store, key string) []byte {
	t.Helper()
	return getObject(t, s.client, s.bucket, key)
}

func getObject(t testing.TB, client *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func randomBytes(n int, seed byte) []byte {
	r := rand.NewChaCha8([32]byte{seed})
	b := make([]byte, n)
	r.Read(b)
	return b
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

type countingClient struct {
	next s3.HTTPClient
	n    *atomic.Int64
}

func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.Do(r)
}
