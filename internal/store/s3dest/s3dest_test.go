//go:build linux

// Linux only, as the versitygw the tests run against is (internal/testsrv).

package s3dest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/testsrv"
)

// env is one gateway with a destination bucket and a bucket of uploads' data.
type env struct {
	srv    *testsrv.S3Server
	client *s3.Client // the test's own, whose requests no Dest counts
	dest   string     // bucket
	data   string     // bucket
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testsrv.S3(t)
	return &env{srv: srv, client: srv.Client(), dest: srv.Bucket(t, "dest"), data: srv.Bucket(t, "data")}
}

// open is a Dest on prefix "photos/" with a client of its own, as another instance
// would have, whose operations ops records.
func (e *env) open(t *testing.T, ops *opLog) *Dest {
	t.Helper()
	client := e.srv.Client()
	if ops != nil {
		client = s3.New(client.Options(), ops.record)
	}
	d, err := Open(client, e.dest, "photos/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// upload puts an upload's data object and returns it.
func (e *env) upload(t *testing.T, id string, data []byte) Object {
	t.Helper()
	key := "uploads/" + id
	e.put(t, e.data, key, data)
	return Object{Bucket: e.data, Key: key, Size: int64(len(data))}
}

func (e *env) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	if _, err := e.client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) get(t *testing.T, bucket, key string) (data []byte, contentType string) {
	t.Helper()
	out, err := e.client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, aws.ToString(out.ContentType)
}

// files lists the destination's placed files, markers left out.
func (e *env) files(t *testing.T) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(e.client, &s3.ListObjectsV2Input{Bucket: &e.dest, Prefix: aws.String("photos/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			if k := strings.TrimPrefix(*o.Key, "photos/"); !strings.HasPrefix(k, ".") {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

func (e *env) multipartUploads(t *testing.T) []string {
	t.Helper()
	out, err := e.client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &e.dest})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, *u.Key)
	}
	return keys
}

// numbered are the candidates sets gives NamingOriginal, "a.png", "a_1.png"...,
// enough of them for these tests.
func numbered(name string) iter.Seq[string] {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	return func(yield func(string) bool) {
		if !yield(name) {
			return
		}
		for i := 1; i < 50; i++ {
			if !yield(base + "_" + strconv.Itoa(i) + ext) {
				return
			}
		}
	}
}

// record is an upload's record as far as placement uses it.
type record struct {
	mu       sync.Mutex
	intended string
}

func (r *record) request(names iter.Seq[string]) store.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return store.Request{Names: names, Intended: r.intended, Intend: func(name string) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.intended = name
		return nil
	}}
}

func random(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func localFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opLog records the operations a client calls, with the bucket and key of each.
type opLog struct {
	mu  sync.Mutex
	ops []op
}

type op struct{ name, bucket, key string }

func (l *opLog) record(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("opLog",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				v := reflect.ValueOf(in.Parameters).Elem()
				field := func(name string) string {
					if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() {
						return f.Elem().String()
					}
					return ""
				}
				l.mu.Lock()
				l.ops = append(l.ops, op{awsmiddleware.GetOperationName(ctx), field("Bucket"), field("Key")})
				l.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func (l *opLog) names() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for _, o := range l.ops {
		m[o.name]++
	}
	return m
}

func (l *opLog) on(bucket, key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for _, o := range l.ops {
		if o.bucket == bucket && o.key == key {
			names = append(names, o.name)
		}
	}
	return names
}

func (l *opLog) reset() {
	l.mu.Lock()
	l.ops = nil
	l.mu.Unlock()
}

// Twenty uploads of one name, finished at once on two instances, get twenty names,
// each holding its own bytes.
func TestConcurrentPlacement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	instances := []*Dest{e.open(t, nil), e.open(t, nil)}
	const n = 20
	datas := make([][]byte, n)
	names := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		datas[i] = random(1000+i, uint64(i))
		id := fmt.Sprintf("upload-%d", i)
		src := e.upload(t, id, datas[i])
		req := (&record{}).request(numbered("a.png"))
		wg.Go(func() {
			d := instances[i%2]
			if i%4 == 3 {
				// Some are image outputs, placed from local files.
				req.Src.Path = localFile(t, id, datas[i])
				names[i], errs[i] = d.Place(req)
				return
			}
			names[i], errs[i] = d.PlaceObject(req, id, src)
		})
	}
	wg.Wait()
	var want []string
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("upload %d: %v", i, errs[i])
		}
		if i == 0 {
			want = append(want, "a.png")
		} else {
			want = append(want, fmt.Sprintf("a_%d.png", i))
		}
	}
	if got, sorted := e.files(t), slices.Sorted(slices.Values(want)); !slices.Equal(got, sorted) {
		t.Fatalf("placed files %v, want %v", got, sorted)
	}
	for i, name := range names {
		got, _ := e.get(t, e.dest, "photos/"+name)
		if sha256.Sum256(got) != sha256.Sum256(datas[i]) {
			t.Errorf("%s does not hold upload %d's bytes", name, i)
		}
	}
}

// CAT.PNG and cat.png are one name, on any instance.
func TestNamesFoldCase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, d2 := e.open(t, nil), e.open(t, nil)
	first, err := d1.PlaceObject((&record{}).request(numbered("CAT.PNG")), "one", e.upload(t, "one", []byte("one")))
	if err != nil || first != "CAT.PNG" {
		t.Fatalf("first: %q, %v", first, err)
	}
	second, err := d2.PlaceObject((&record{}).request(numbered("cat.png")), "two", e.upload(t, "two", []byte("two")))
	if err != nil || second != "cat_1.png" {
		t.Fatalf("second: %q, %v; want cat_1.png", second, err)
	}
	// Folded whole, folder and all.
	req := (&record{}).request(numbered("Cat.png"))
	req.Folder = "Album"
	third, err := d2.PlaceObject(req, "three", e.upload(t, "three", []byte("three")))
	if err != nil || third != "Album/Cat.png" {
		t.Fatalf("third: %q, %v", third, err)
	}
	req = (&record{}).request(numbered("cat.PNG"))
	req.Folder = "album"
	fourth, err := d1.PlaceObject(req, "four", e.upload(t, "four", []byte("four")))
	if err != nil || fourth != "album/cat_1.PNG" {
		t.Fatalf("fourth: %q, %v; want album/cat_1.PNG", fourth, err)
	}
}

// An attempt repeated for one upload, whether after an error or a crash at any step,
// ends with one file under one name.
func TestRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ops := &opLog{}
	d := e.open(t, ops)
	ctx := t.Context()

	t.Run("twice", func(t *testing.T) {
		src := e.upload(t, "twice", []byte("twice"))
		rec := &record{}
		first, err := d.PlaceObject(rec.request(numbered("twice.txt")), "twice", src)
		if err != nil {
			t.Fatal(err)
		}
		// Not even the intended name is needed: the marker and the file are ours,
		// and nothing is copied again.
		ops.reset()
		second, err := d.PlaceObject((&record{}).request(numbered("twice.txt")), "twice", src)
		if err != nil || second != first {
			t.Fatalf("second attempt: %q, %v; want %q", second, err, first)
		}
		if n := ops.names()["CreateMultipartUpload"]; n > 0 {
			t.Errorf("the second attempt copied again")
		}
		if rec.intended != first {
			t.Errorf("intended %q, want %q", rec.intended, first)
		}
		if got := e.files(t); !slices.Equal(got, []string{"twice.txt"}) {
			t.Errorf("files %v, want [twice.txt]", got)
		}
	})

	// The steps of a placement, stopped after step; the next attempt starts from
	// what it left.
	steps := map[string]struct {
		stop   string // "reserved", "intended", "completed"
		parts  bool   // the crash left a multipart upload behind
		placed bool   // the file is complete before the retry
	}{
		"after the marker":            {stop: "reserved"},
		"during the copy":             {stop: "reserved", parts: true},
		"after Intend":                {stop: "intended", parts: true},
		"after the object's complete": {stop: "completed", placed: true},
	}
	for label, tc := range steps {
		t.Run(label, func(t *testing.T) {
			id := strings.ReplaceAll(label, " ", "-")
			name := id + ".bin"
			data := random(100, 7)
			src := e.upload(t, id, data)
			rec := &record{}
			ownerTag := tag(id)
			// Someone else holds the first candidate, so the retry must not
			// simply start from the top.
			if _, err := d.PlaceObject((&record{}).request(numbered(name)), "other-"+id, e.upload(t, "other-"+id, []byte("x"))); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSuffix(name, ".bin") + "_1.bin"
			if held, _, err := d.reserve(want, ownerTag); err != nil || !held {
				t.Fatalf("reserve: %v, %v", held, err)
			}
			key := "photos/" + want
			if tc.parts {
				if _, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &e.dest, Key: &key}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.stop != "reserved" {
				rec.request(nil).Intend(want)
			}
			if tc.stop == "completed" {
				tg := target{name: want, key: key, contentType: "application/octet-stream",
					meta: map[string]string{ownerMeta: ownerTag}, intend: func() error { return nil }}
				if _, err := d.copyTo(tg, src, nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := d.PlaceObject(rec.request(numbered(name)), id, src)
			if err != nil || got != want {
				t.Fatalf("retry: %q, %v; want %q", got, err, want)
			}
			placed, _ := e.get(t, e.dest, key)
			if !bytes.Equal(placed, data) {
				t.Errorf("%s holds %q", want, placed)
			}
			var mine []string
			for _, f := range e.files(t) {
				if strings.HasPrefix(f, id) {
					mine = append(mine, f)
				}
			}
			if !slices.Equal(mine, []string{name, want}) {
				t.Errorf("files %v, want [%s %s]", mine, name, want)
			}
			if left := e.multipartUploads(t); slices.Contains(left, key) {
				t.Errorf("multipart uploads left: %v", left)
			}
		})
	}
}

// A file put into the prefix behind uploadsets' back is never replaced, whether it
// is there before the placement looks or appears just before the copy completes.
func TestNeverReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.open(t, nil)
	theirs := []byte("not uploadsets'")
	tests := map[string]struct {
		local bool // PlaceFile rather than PlaceObject
		size  int
		late  bool // the file appears at Intend, after the name is reserved
	}{
		"copy, there before":          {},
		"copy, appearing":             {late: true},
		"file, there before":          {local: true},
		"file, appearing":             {local: true, late: true},
		"file in parts, appearing":    {local: true, size: 6 << 20, late: true},
		"empty copy, appearing":       {size: -1, late: true},
		"copy in parts, there before": {size: 11 << 20},
	}
	d.putPartSize, d.copyPartSize = minPart, minPart
	for label, tc := range tests {
		t.Run(label, func(t *testing.T) {
			id := strings.ReplaceAll(strings.ReplaceAll(label, ",", ""), " ", "-")
			name := id + ".txt"
			if !tc.late {
				e.put(t, e.dest, "photos/"+name, theirs)
			}
			size := max(tc.size, 0)
			if tc.size == 0 {
				size = 100
			}
			data := random(size, 3)
			rec := &record{}
			req := rec.request(numbered(name))
			if tc.late {
				intend := req.Intend
				req.Intend = func(n string) error {
					if n == name {
						e.put(t, e.dest, "photos/"+name, theirs)
					}
					return intend(n)
				}
			}
			var got string
			var err error
			if tc.local {
				req.Src.Path = localFile(t, id, data)
				got, err = d.Place(req)
			} else {
				got, err = d.PlaceObject(req, id, e.upload(t, id, data))
			}
			want := id + "_1.txt"
			if err != nil || got != want {
				t.Fatalf("placed as %q, %v; want %q", got, err, want)
			}
			if b, _ := e.get(t, e.dest, "photos/"+name); !bytes.Equal(b, theirs) {
				t.Errorf("their file was replaced")
			}
			if b, _ := e.get(t, e.dest, "photos/"+want); !bytes.Equal(b, data) {
				t.Errorf("%s does not hold the upload", want)
			}
			if left := e.multipartUploads(t); len(left) > 0 {
				t.Errorf("multipart uploads left: %v", left)
			}
		})
	}
}

// An upload's object is copied by S3 itself: no byte of it is read by the process,
// and the source stays as it was.
func TestServerSideCopy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ops := &opLog{}
	d := e.open(t, ops)
	for label, tc := range map[string]struct {
		size, partSize int64
		parts          int
	}{
		"one part":    {size: 3 << 20, partSize: maxPart, parts: 1},
		"three parts": {size: 11 << 20, partSize: minPart, parts: 3},
	} {
		t.Run(label, func(t *testing.T) {
			d.copyPartSize = tc.partSize
			ops.reset()
			id := strings.ReplaceAll(label, " ", "-")
			data := random(int(tc.size), 11)
			src := e.upload(t, id, data)
			before, err := e.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &src.Bucket, Key: &src.Key})
			if err != nil {
				t.Fatal(err)
			}
			name, err := d.PlaceObject((&record{}).request(numbered(id+".png")), id, src)
			if err != nil {
				t.Fatal(err)
			}
			if got := ops.on(src.Bucket, src.Key); !slices.Equal(got, []string{"HeadObject"}) {
				t.Errorf("operations on the source: %v, want [HeadObject]", got)
			}
			counts := ops.names()
			if counts["UploadPartCopy"] != tc.parts || counts["GetObject"] > 0 || counts["UploadPart"] > 0 || counts["PutObject"] != 1 {
				t.Errorf("operations %v, want %d UploadPartCopy, one PutObject (the marker), no GetObject or UploadPart", counts, tc.parts)
			}
			got, ct := e.get(t, e.dest, "photos/"+name)
			if !bytes.Equal(got, data) || ct != "image/png" {
				t.Errorf("placed %d bytes of type %q, want the upload's %d of image/png", len(got), ct, len(data))
			}
			after, err := e.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &src.Bucket, Key: &src.Key})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(after.ETag) != aws.ToString(before.ETag) || !aws.ToTime(after.LastModified).Equal(aws.ToTime(before.LastModified)) {
				t.Errorf("the source changed: %v %v, was %v %v", after.ETag, after.LastModified, before.ETag, before.LastModified)
			}
			if b, _ := e.get(t, src.Bucket, src.Key); !bytes.Equal(b, data) {
				t.Error("the source's bytes changed")
			}
		})
	}

	t.Run("wrong size", func(t *testing.T) {
		src := e.upload(t, "short", []byte("short"))
		src.Size = 4
		if _, err := d.PlaceObject((&record{}).request(numbered("short.txt")), "short", src); err == nil {
			t.Error("placed an object of another size than the record's")
		}
		src.Size = -1
		if name, err := d.PlaceObject((&record{}).request(numbered("short.txt")), "short", src); err != nil {
			t.Errorf("size unknown: %v", err)
		} else if got, _ := e.get(t, e.dest, "photos/"+name); string(got) != "short" {
			t.Errorf("size unknown: placed %q", got)
		}
	})
	t.Run("empty", func(t *testing.T) {
		name, err := d.PlaceObject((&record{}).request(numbered("empty.txt")), "empty", e.upload(t, "empty", nil))
		if err != nil {
			t.Fatal(err)
		}
		if got, ct := e.get(t, e.dest, "photos/"+name); len(got) != 0 || ct != "text/plain; charset=utf-8" {
			t.Errorf("placed %q of type %q", got, ct)
		}
	})
}

// The parts of a large copy are copied at the same time: each UploadPartCopy is held
// until every part's has started, which only a copy that sends them at once gets past.
func TestCopyPartsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const parts = 3
	var mu sync.Mutex
	started := 0
	all := make(chan struct{})
	client := s3.New(e.srv.Client().Options(), func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("barrier",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) == "UploadPartCopy" {
						mu.Lock()
						if started++; started == parts {
							close(all)
						}
						mu.Unlock()
						select {
						case <-all:
						case <-time.After(30 * time.Second):
							return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("the other parts were not started meanwhile")
						}
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
	d, err := Open(client, e.dest, "photos/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.copyPartSize, d.partsAtOnce = minPart, parts
	data := random(2*minPart+1000, 13)
	name, err := d.PlaceObject((&record{}).request(numbered("big.bin")), "big", e.upload(t, "big", data))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.get(t, e.dest, "photos/"+name); !bytes.Equal(got, data) {
		t.Errorf("placed %d bytes that are not the upload's %d", len(got), len(data))
	}
}

// Local files (image outputs) go up whole, or in parts when they are large.
func TestPlaceFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ops := &opLog{}
	d := e.open(t, ops)
	d.putPartSize = minPart
	for label, tc := range map[string]struct {
		size  int
		parts int
	}{
		"small": {size: 1000},
		"6 MiB": {size: 6 << 20, parts: 2},
	} {
		t.Run(label, func(t *testing.T) {
			ops.reset()
			id := strings.ReplaceAll(label, " ", "-")
			data := random(tc.size, 5)
			req := (&record{}).request(numbered("out.jpg"))
			req.Folder = "2026/" + id
			req.Src.Path = localFile(t, id+".out.main.jpg", data)
			name, err := d.Place(req)
			if err != nil || name != "2026/"+id+"/out.jpg" {
				t.Fatalf("placed as %q, %v", name, err)
			}
			if got := ops.names()["UploadPart"]; got != tc.parts {
				t.Errorf("%d parts, want %d", got, tc.parts)
			}
			got, ct := e.get(t, e.dest, "photos/"+name)
			if !bytes.Equal(got, data) || ct != "image/jpeg" {
				t.Errorf("placed %d bytes of type %q, want %d of image/jpeg", len(got), ct, len(data))
			}
			// The file's base name is its owner: placing it again finds it.
			again, err := d.Place(req)
			if err != nil || again != name {
				t.Errorf("placed again as %q, %v", again, err)
			}
		})
	}
	t.Run("unsafe folder", func(t *testing.T) {
		req := (&record{}).request(numbered("x.jpg"))
		req.Src.Path = localFile(t, "x", []byte("x"))
		for _, folder := range []string{"..", "a/../..", ".uploadsets", "a//b", "/a"} {
			req.Folder = folder
			if name, err := d.Place(req); err == nil {
				t.Errorf("folder %q: placed as %q", folder, name)
			}
		}
	})
}

// Unplace frees the name for the next upload.
func TestUnplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.open(t, nil)
	first, err := d.PlaceObject((&record{}).request(numbered("a.png")), "one", e.upload(t, "one", []byte("one")))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Unplace(first); err != nil {
		t.Fatal(err)
	}
	if got := e.files(t); len(got) > 0 {
		t.Errorf("files after Unplace: %v", got)
	}
	second, err := d.PlaceObject((&record{}).request(numbered("A.PNG")), "two", e.upload(t, "two", []byte("two")))
	if err != nil || second != "A.PNG" {
		t.Errorf("after Unplace: %q, %v; want A.PNG", second, err)
	}
	if err := d.Unplace("never-placed.png"); err != nil {
		t.Errorf("Unplace of a name never placed: %v", err)
	}
	if err := d.Unplace("../x"); err == nil {
		t.Error("Unplace of an unsafe name")
	}
}

// Every candidate taken.
func TestNoFreeName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.open(t, nil)
	only := func(yield func(string) bool) { yield("only.txt") }
	if _, err := d.PlaceObject((&record{}).request(only), "one", e.upload(t, "one", []byte("one"))); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PlaceObject((&record{}).request(only), "two", e.upload(t, "two", []byte("two"))); !errors.Is(err, ErrNoFreeName) {
		t.Errorf("error %v, want ErrNoFreeName", err)
	}
}

// A placement that fails before its file could be complete lets its name go.
func TestFailureReleasesName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.open(t, nil)
	req := (&record{}).request(numbered("a.png"))
	req.Intend = func(string) error { return errors.New("disk full") }
	if _, err := d.PlaceObject(req, "one", e.upload(t, "one", []byte("one"))); err == nil {
		t.Fatal("placed without its intent recorded")
	}
	if left := e.multipartUploads(t); len(left) > 0 {
		t.Errorf("multipart uploads left: %v", left)
	}
	name, err := d.PlaceObject((&record{}).request(numbered("a.png")), "two", e.upload(t, "two", []byte("two")))
	if err != nil || name != "a.png" {
		t.Errorf("next upload: %q, %v; want a.png", name, err)
	}
}

// RemoveTemps aborts the destination's stale multipart uploads and nothing else.
func TestRemoveTemps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.open(t, nil)
	for _, key := range []string{"photos/a.png", "photos/2026/b.png", "elsewhere/c.png", "photos/.uploadsets/x"} {
		if _, err := e.client.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &e.dest, Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.RemoveTemps(); err != nil {
		t.Fatal(err)
	}
	if left := e.multipartUploads(t); len(left) != 4 {
		t.Errorf("young uploads aborted: %v left", left)
	}
	d.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := d.RemoveTemps(); err != nil {
		t.Fatal(err)
	}
	left := e.multipartUploads(t)
	slices.Sort(left)
	if want := []string{"elsewhere/c.png", "photos/.uploadsets/x"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

// Markers may live apart from the files; never where a file's key could be one.
func TestReservations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := e.srv.Bucket(t, "names")
	client := e.srv.Client()
	for label, tc := range map[string]struct {
		prefix string
		res    Location
		ok     bool
	}{
		"default":                 {prefix: "photos/", ok: true},
		"default at the root":     {prefix: "", ok: true},
		"other bucket":            {prefix: "photos/", res: Location{names, "photos/"}, ok: true},
		"hidden inside":           {prefix: "photos/", res: Location{e.dest, "photos/.names/"}, ok: true},
		"beside":                  {prefix: "photos/", res: Location{e.dest, "names/"}, ok: true},
		"the same":                {prefix: "photos/", res: Location{e.dest, "photos/"}},
		"inside, not hidden":      {prefix: "photos/", res: Location{e.dest, "photos/names/"}},
		"around":                  {prefix: "photos/", res: Location{e.dest, ""}},
		"no slash":                {prefix: "photos", ok: false},
		"empty segment":           {prefix: "a//", ok: false},
		"reservations no slash":   {prefix: "photos/", res: Location{names, "x"}},
		"reservations no bucket":  {prefix: "photos/", res: Location{"", "x/"}},
		"reservations dot-dot":    {prefix: "photos/", res: Location{names, "../x/"}},
		"destination dot segment": {prefix: "./photos/"},
	} {
		t.Run(label, func(t *testing.T) {
			_, err := Open(client, e.dest, tc.prefix, Options{Reservations: tc.res})
			if (err == nil) != tc.ok {
				t.Errorf("Open: %v, want ok=%v", err, tc.ok)
			}
		})
	}

	d, err := Open(client, e.dest, "photos/", Options{Reservations: Location{names, "photos/"}})
	if err != nil {
		t.Fatal(err)
	}
	name, err := d.PlaceObject((&record{}).request(numbered("Ünïcode café.png")), "one", e.upload(t, "one", []byte("one")))
	if err != nil || name != "Ünïcode café.png" {
		t.Fatalf("placed as %q, %v", name, err)
	}
	m, err := d.readMarker("photos/" + fold(name))
	if err != nil || m.Owner != tag("one") || m.Name != name {
		t.Errorf("marker %+v, %v", m, err)
	}
	if got := e.files(t); !slices.Equal(got, []string{name}) {
		t.Errorf("files %v", got)
	}
}

// conflicts answers the first n calls of each operation named in it with 409
// ConditionalRequestConflict, as S3 does while another conditional write to the key is
// in flight.
type conflicts struct {
	mu   sync.Mutex
	left map[string]int
}

type conflictError struct{}

func (conflictError) Error() string       { return "409 ConditionalRequestConflict" }
func (conflictError) HTTPStatusCode() int { return 409 }

func (c *conflicts) inject(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("conflicts",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				name := awsmiddleware.GetOperationName(ctx)
				fail := c.left[name] > 0
				if fail {
					c.left[name]--
				}
				c.mu.Unlock()
				if fail {
					return middleware.InitializeOutput{}, middleware.Metadata{}, conflictError{}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

// A conditional write S3 answers with 409 is tried again: the conflict says nothing
// about whether the key is free.
func TestConflictsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := &conflicts{left: map[string]int{"PutObject": 2, "CompleteMultipartUpload": 2}}
	d, err := Open(s3.New(e.srv.Client().Options(), c.inject), e.dest, "photos/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	name, err := d.PlaceObject((&record{}).request(numbered("a.png")), "one", e.upload(t, "one", []byte("one")))
	if err != nil || name != "a.png" {
		t.Fatalf("placed as %q, %v", name, err)
	}
	c.left["PutObject"] = 2
	req := (&record{}).request(numbered("a.png"))
	req.Src.Path = localFile(t, "two", []byte("two"))
	if name, err := d.Place(req); err != nil || name != "a_1.png" {
		t.Fatalf("placed as %q, %v", name, err)
	}
	if c.left["PutObject"] != 0 || c.left["CompleteMultipartUpload"] != 0 {
		t.Errorf("conflicts not met: %v", c.left)
	}
}
