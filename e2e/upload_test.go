package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestChunkedUploadIsPlacedWithItsBytes(t *testing.T) {
	s := startServer(t, defaultSets)
	data := randomBytes(t, 5<<20+123)
	uploadURL, last := upload(t, s.URL+"/uploads/files/", "report.bin", data, 1<<20)

	name := last.Header.Get("Upload-File-Name")
	fileURL := last.Header.Get("Upload-File-Url")
	if name != "report.bin" {
		t.Errorf("Upload-File-Name = %q, want report.bin", name)
	}
	if want := s.URL + "/files/files/report.bin"; fileURL != want {
		t.Errorf("Upload-File-Url = %q, want %q", fileURL, want)
	}
	if got := fileSHA(t, filepath.Join(s.Uploads("files"), "report.bin")); got != sha(data) {
		t.Error("stored bytes differ from the uploaded ones")
	}
	res, body := do(t, http.MethodGet, fileURL, nil, nil)
	if res.StatusCode != 200 || sha([]byte(body)) != sha(data) {
		t.Errorf("GET %s: %d, %d bytes", fileURL, res.StatusCode, len(body))
	}
	// Nothing of the upload is left in the data directory (its record is in the
	// data_dir's record log).
	if left := files(t, filepath.Join(s.Dir, "data", "files")); len(left) != 0 {
		t.Errorf("data dir holds %v, want nothing", left)
	}

	// After the move the upload still reads as complete, so a client whose last
	// response was lost does not start again.
	res, _ = do(t, http.MethodHead, uploadURL, nil, nil)
	if res.StatusCode != 200 || res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) || res.Header.Get("Upload-Length") != strconv.Itoa(len(data)) {
		t.Errorf("HEAD after placement: %d offset=%s length=%s", res.StatusCode, res.Header.Get("Upload-Offset"), res.Header.Get("Upload-Length"))
	}
	// A repeated final request changes nothing.
	res, _ = patch(t, uploadURL, int64(len(data)), nil)
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Errorf("repeated final PATCH: %d offset=%s", res.StatusCode, res.Header.Get("Upload-Offset"))
	}
	if got := files(t, s.Uploads("files")); !slices.Equal(got, []string{"report.bin"}) {
		t.Errorf("destination holds %v after a repeated final request", got)
	}

	var st map[string]any
	id := uploadURL[strings.LastIndex(uploadURL, "/")+1:]
	res, body = do(t, http.MethodGet, s.URL+"/api/uploads/files/"+id, nil, nil)
	if err := json.Unmarshal([]byte(body), &st); err != nil || res.StatusCode != 200 {
		t.Fatalf("api: %d %s", res.StatusCode, body)
	}
	want := map[string]any{"id": id, "set": "files", "state": "complete", "offset": float64(len(data)), "size": float64(len(data)), "name": "report.bin", "url": fileURL}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("api %s = %v, want %v", k, st[k], v)
		}
	}
}

// Large bodies take the fast path (1 MiB blocks past the page cache where the data
// directory's filesystem allows it), from any offset: chunks that leave the file at
// unaligned sizes, then the rest in one PATCH of 40 MiB.
func TestLargeBodiesFromUnalignedOffsets(t *testing.T) {
	s := startServer(t, defaultSets)
	data := randomBytes(t, 3*(1<<20+4093)+40<<20)
	res, body := create(t, s.URL+"/uploads/files/", "large.bin", int64(len(data)))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	url := res.Header.Get("Location")
	off := 0
	for _, n := range []int{1<<20 + 4093, 1<<20 + 4093, 1<<20 + 4093, 40 << 20} {
		res, body := patch(t, url, int64(off), data[off:off+n])
		if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-Offset") != strconv.Itoa(off+n) {
			t.Fatalf("PATCH at %d: %d offset=%s %s", off, res.StatusCode, res.Header.Get("Upload-Offset"), body)
		}
		off += n
	}
	if got := fileSHA(t, filepath.Join(s.Uploads("files"), "large.bin")); got != sha(data) {
		t.Error("stored bytes differ from the uploaded ones")
	}
}

func TestCreationWithUpload(t *testing.T) {
	s := startServer(t, defaultSets)
	data := randomBytes(t, 70_000)
	res, body := do(t, http.MethodPost, s.URL+"/uploads/files/", strings.NewReader(string(data)), map[string]string{
		"Upload-Length":   strconv.Itoa(len(data)),
		"Upload-Metadata": encodeMeta(map[string]string{"name": "One Shot.DAT", "type": "application/octet-stream"}),
		"Content-Type":    "application/offset+octet-stream",
	})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	name := res.Header.Get("Upload-File-Name")
	if name != "One_Shot.dat" {
		t.Errorf("Upload-File-Name = %q, want One_Shot.dat (Uppy's name key, sanitised, ext lower-cased)", name)
	}
	if got := fileSHA(t, filepath.Join(s.Uploads("files"), name)); got != sha(data) {
		t.Error("bytes differ")
	}
}

func TestPolicyRefusesBeforeAnyByte(t *testing.T) {
	s := startServer(t, defaultSets)
	tests := map[string]struct {
		set, name string
		size      int64
		status    int
		says      []string
	}{
		"extension":  {"photos", "setup.exe", 10, 415, []string{`set "photos"`, `".exe"`, "jpg"}},
		"double ext": {"photos", "x.png.php", 10, 415, []string{`set "photos"`, `".php"`}},
		"too large":  {"photos", "big.png", 3 << 20, 413, []string{`set "photos"`, "2 MiB"}},
		"no name":    {"photos", "", 10, 400, []string{`set "photos"`, "name"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// The whole body is offered with the creation request; the server must
			// refuse without storing any of it.
			res, body := do(t, http.MethodPost, s.URL+"/uploads/"+tc.set+"/", strings.NewReader(strings.Repeat("x", 10)), map[string]string{
				"Upload-Length":   strconv.FormatInt(tc.size, 10),
				"Upload-Metadata": encodeMeta(map[string]string{"filename": tc.name}),
				"Content-Type":    "application/offset+octet-stream",
			})
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			for _, s := range tc.says {
				if !strings.Contains(body, s) {
					t.Errorf("body %q does not mention %s", body, s)
				}
			}
			if res.Header.Get("Location") != "" {
				t.Errorf("a refused upload got a Location: %s", res.Header.Get("Location"))
			}
		})
	}
	if left := files(t, filepath.Join(s.Dir, "data", "photos")); len(left) != 0 {
		t.Errorf("refused uploads left %v in the data dir", left)
	}
}

func TestConcurrentSameNameGiveDistinctFiles(t *testing.T) {
	s := startServer(t, defaultSets)
	const n = 20
	datas := make([][]byte, n)
	names := make([]string, n)
	// All uploads are created and sent up to their last byte first; only the
	// final PATCHes run at the same moment.
	urls := make([]string, n)
	for i := range n {
		datas[i] = fakePNG(t, 64<<10)
		res, body := create(t, s.URL+"/uploads/photos/", "photo.png", int64(len(datas[i])))
		if res.StatusCode != 201 {
			t.Fatalf("POST: %d %s", res.StatusCode, body)
		}
		urls[i] = res.Header.Get("Location")
		if res, body := patch(t, urls[i], 0, datas[i][:len(datas[i])-1]); res.StatusCode != 204 {
			t.Fatalf("PATCH: %d %s", res.StatusCode, body)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, body := patch(t, urls[i], int64(len(datas[i])-1), datas[i][len(datas[i])-1:])
			if res.StatusCode != 204 {
				t.Errorf("final PATCH: %d %s", res.StatusCode, body)
			}
			names[i], _ = url.PathUnescape(res.Header.Get("Upload-File-Name"))
		})
	}
	close(start)
	wg.Wait()
	for i, name := range names {
		if got := fileSHA(t, filepath.Join(s.Uploads("photos"), name)); got != sha(datas[i]) {
			t.Errorf("upload %d placed as %q holds other bytes", i, name)
		}
	}
	got := files(t, s.Uploads("photos"))
	if len(got) != n {
		t.Errorf("destination holds %d files, want %d: %v", len(got), n, got)
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != n {
		t.Errorf("names not distinct: %v", names)
	}
	if !slices.Contains(names, "photo.png") || !slices.Contains(names, "photo_19.png") {
		t.Errorf("names %v: want photo.png through photo_19.png", names)
	}
}

func TestHostileNamesStayInTheDestination(t *testing.T) {
	s := startServer(t, defaultSets)
	corpus := []string{
		"../../../etc/passwd.txt", `..\..\windows\win.ini`, "/abs/path.txt", "a/b/c.txt",
		"nul\x00byte.txt", "ctrl\x01\x1f\x7f.txt", "CON", "con.txt", "LPT1.log", ".htaccess",
		"..", ".", "...", "photo.png.php", strings.Repeat("é", 300) + ".txt", "фото.TXT",
		"e\u0301te\u0301.txt", "%2e%2e%2fx.txt", "semi;colon?.txt", "tab\there.txt", "a\u202egnp.exe",
	}
	for i, name := range corpus {
		data := []byte(fmt.Sprint("file ", i))
		res, body := create(t, s.URL+"/uploads/files/", name, int64(len(data)))
		if res.StatusCode != 201 {
			if res.StatusCode != 400 {
				t.Errorf("%q: %d %s", name, res.StatusCode, body)
			}
			continue
		}
		res, body = patch(t, res.Header.Get("Location"), 0, data)
		if res.StatusCode != 204 {
			t.Errorf("%q: PATCH %d %s", name, res.StatusCode, body)
			continue
		}
		placed, _ := url.PathUnescape(res.Header.Get("Upload-File-Name"))
		if placed == "" || strings.ContainsAny(placed, "/\\\x00") || strings.HasPrefix(placed, ".") || len(placed) > 255 {
			t.Errorf("%q placed as unsafe %q", name, placed)
		}
		b, err := os.ReadFile(filepath.Join(s.Uploads("files"), placed))
		if err != nil || string(b) != string(data) {
			t.Errorf("%q: placed file %q holds %q, %v", name, placed, b, err)
		}
	}
	// Every file the server wrote is either in the destination or its own data.
	filepath.WalkDir(s.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == s.Config {
			return err
		}
		rel, _ := filepath.Rel(s.Dir, p)
		if !strings.HasPrefix(rel, filepath.Join("uploads", "files")+"/") && !strings.HasPrefix(rel, "data/") {
			t.Errorf("file written outside the destination: %s", rel)
		}
		return nil
	})
}

func TestUUIDNaming(t *testing.T) {
	s := startServer(t, defaultSets)
	_, last := upload(t, s.URL+"/uploads/docs/", "Minutes.DOCX", append([]byte("PK\x03\x04"), randomBytes(t, 100)...), 1<<20)
	name := last.Header.Get("Upload-File-Name")
	if len(name) != len("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.docx") || !strings.HasSuffix(name, ".docx") {
		t.Errorf("uuid name = %q", name)
	}
}

func TestServedFiles(t *testing.T) {
	s := startServer(t, defaultSets)
	data := []byte("0123456789abcdefghij")
	_, last := upload(t, s.URL+"/uploads/files/", "digits.txt", data, 7)
	fileURL := last.Header.Get("Upload-File-Url")

	res, body := do(t, http.MethodGet, fileURL, nil, map[string]string{"Range": "bytes=5-9"})
	if res.StatusCode != http.StatusPartialContent || body != "56789" || res.Header.Get("Content-Range") != "bytes 5-9/20" {
		t.Errorf("Range: %d %q %s", res.StatusCode, body, res.Header.Get("Content-Range"))
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("headers: %v", res.Header)
	}

	for name, wantAttachment := range map[string]bool{"page.html": true, "logo.svg": true, "app.js": true, "feed.xml": true, "pic.png": false} {
		content := []byte("<html><script>alert(1)</script>")
		switch name {
		case "pic.png":
			content = fakePNG(t, 100)
		case "logo.svg": // .svg must hold SVG now; a script in it is still never run
			content = []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
		}
		_, last := upload(t, s.URL+"/uploads/files/", name, content, 100)
		res, _ := do(t, http.MethodGet, last.Header.Get("Upload-File-Url"), nil, nil)
		cd := res.Header.Get("Content-Disposition")
		if strings.HasPrefix(cd, "attachment") != wantAttachment {
			t.Errorf("%s: Content-Disposition %q", name, cd)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", name)
		}
	}
	// Dot-segments are cleaned by a redirect; wherever it leads, nothing outside
	// the destination is served.
	for _, bad := range []string{"/files/files/..%2fconfig.hcl", "/files/files/%2e%2e/config.hcl", "/files/files/%2e%2e%2f%2e%2e%2fconfig.hcl", "/files/nope/digits.txt", "/files/files/missing.txt"} {
		res, err := http.Get(s.URL + bad)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("GET %s (following redirects): %d, want 404", bad, res.StatusCode)
		}
	}
}

func TestCORSExposesTheResult(t *testing.T) {
	s := startServer(t, defaultSets)
	res, _ := do(t, http.MethodOptions, s.URL+"/uploads/files/", nil, map[string]string{
		"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
	})
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
	if res.Header.Get("Tus-Max-Size") != strconv.Itoa(64<<20) || !strings.Contains(res.Header.Get("Tus-Extension"), "creation") {
		t.Errorf("OPTIONS advertises %v", res.Header)
	}
	// Deferred length is policed by the store (no byte past max_size); concatenation
	// would slip past the creation-time policy.
	if strings.Contains(res.Header.Get("Tus-Extension"), "concatenation") {
		t.Error("advertises concatenation")
	}
	res, body := do(t, http.MethodPost, s.URL+"/uploads/files/", strings.NewReader("hi"), map[string]string{
		"Origin": "http://app.example", "Upload-Length": "2", "Content-Type": "application/offset+octet-stream",
		"Upload-Metadata": encodeMeta(map[string]string{"filename": "hi.txt"}),
	})
	if res.StatusCode != 201 {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	exposed := res.Header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"Upload-File-Name", "Upload-File-Url", "Location", "Upload-Offset"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
}

func TestAPIAndRoutes(t *testing.T) {
	s := startServer(t, defaultSets)
	res, body := do(t, http.MethodGet, s.URL+"/api/sets", nil, nil)
	var out struct {
		Sets []struct {
			Name, Endpoint, URL string
			Extensions          []string
			AnyExtension        bool  `json:"any_extension"`
			MaxSize             int64 `json:"max_size"`
		}
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || res.StatusCode != 200 {
		t.Fatalf("/api/sets: %d %s", res.StatusCode, body)
	}
	if len(out.Sets) != 3 || out.Sets[0].Name != "photos" || out.Sets[0].MaxSize != 2<<20 ||
		out.Sets[0].Endpoint != s.URL+"/uploads/photos/" || !slices.Contains(out.Sets[0].Extensions, "png") || !out.Sets[1].AnyExtension {
		t.Errorf("/api/sets = %+v", out)
	}
	for path, want := range map[string]int{
		"/healthz":                     200,
		"/metrics":                     200,
		"/":                            200,
		"/uploads/nope/":               404,
		"/api/uploads/nope/" + zeroID:  404,
		"/api/uploads/files/" + zeroID: 404,
		"/uploads/files/" + zeroID:     404,
		"/uploads/files/not-an-id":     404,
	} {
		method := http.MethodGet
		if strings.HasPrefix(path, "/uploads/") {
			method = http.MethodHead
		}
		if res, _ := do(t, method, s.URL+path, nil, nil); res.StatusCode != want {
			t.Errorf("%s %s: %d, want %d", method, path, res.StatusCode, want)
		}
	}
	res, _ = do(t, http.MethodPost, s.URL+"/uploads/nope/", nil, map[string]string{"Upload-Length": "1"})
	if res.StatusCode != 404 {
		t.Errorf("POST to an unknown set: %d", res.StatusCode)
	}
	res, body = do(t, http.MethodGet, s.URL+"/metrics", nil, nil)
	if !strings.Contains(body, `uploadsets_bytes_received_total{set="photos"}`) {
		t.Errorf("/metrics lacks per-set counters")
	}
	_ = io.Discard
}

const zeroID = "00000000000000000000000000000000"
