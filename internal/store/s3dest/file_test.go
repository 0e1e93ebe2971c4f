//go:build linux

package s3dest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Serving goes through http.ServeContent, ranges and all, with one GET per range.
func TestServe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ops := &opLog{}
	d := e.open(t, ops)
	data := random(1<<20, 9)
	name, err := d.PlaceObject((&record{}).request(numbered("doc.pdf")), "doc", e.upload(t, "doc", data))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := d.Open(strings.TrimPrefix(r.URL.Path, "/"))
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "internal error", 500)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "internal error", 500)
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		http.ServeContent(w, r, st.Name(), st.ModTime(), f)
	}))
	defer srv.Close()

	tests := map[string]struct {
		rng  string
		code int
		body []byte
	}{
		"whole":     {code: 200, body: data},
		"a range":   {rng: "bytes=10-19", code: 206, body: data[10:20]},
		"the end":   {rng: "bytes=-5", code: 206, body: data[len(data)-5:]},
		"past it":   {rng: fmt.Sprintf("bytes=%d-", len(data)), code: 416},
		"two parts": {rng: "bytes=0-4,100-104", code: 206},
	}
	for label, tc := range tests {
		t.Run(label, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/"+name, nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			switch {
			case tc.body != nil && !bytes.Equal(body, tc.body):
				t.Errorf("body of %d bytes, want %d", len(body), len(tc.body))
			case label == "two parts" && (!strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
				!bytes.Contains(body, data[0:5]) || !bytes.Contains(body, data[100:105])):
				t.Errorf("multi-range answer %q of %q", resp.Header.Get("Content-Type"), body)
			}
		})
	}

	t.Run("one GET streamed", func(t *testing.T) {
		f, err := d.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ops.reset()
		var got []byte
		buf := make([]byte, 1000)
		for {
			n, err := f.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, data) {
			t.Error("read back other bytes")
		}
		if n := ops.names()["GetObject"]; n != 1 {
			t.Errorf("%d GETs, want 1", n)
		}
		// A seek to where it is costs nothing; one elsewhere, one more GET.
		if _, err := f.Seek(0, io.SeekCurrent); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(-10, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		tail, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(tail, data[len(data)-10:]) {
			t.Errorf("tail %q, %v", tail, err)
		}
		if n := ops.names()["GetObject"]; n != 2 {
			t.Errorf("%d GETs, want 2", n)
		}
	})

	t.Run("stat", func(t *testing.T) {
		f, err := d.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		if st.Name() != "doc.pdf" || st.Size() != int64(len(data)) || !st.Mode().IsRegular() || st.IsDir() ||
			time.Since(st.ModTime()) > time.Hour || time.Since(st.ModTime()) < -time.Hour {
			t.Errorf("stat: %s %d %v %v", st.Name(), st.Size(), st.Mode(), st.ModTime())
		}
	})

	// A marker is at a key of the destination's bucket, and S3 keys are literal: no
	// name may reach it, nor anything outside the prefix.
	e.put(t, e.dest, "outside.txt", []byte("outside"))
	e.put(t, e.dest, "photos/.hidden", []byte("hidden"))
	e.put(t, e.dest, "photos//x", []byte("empty segment"))
	for _, n := range []string{"missing.pdf", "", "/doc.pdf", "../outside.txt", "a/../../outside.txt",
		".hidden", "/x", "", "x/", ".uploadsets/names/doc.pdf", "./doc.pdf", `a\b`} {
		if f, err := d.Open(n); !errors.Is(err, fs.ErrNotExist) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q): %v, want not found", n, err)
		}
	}
}
