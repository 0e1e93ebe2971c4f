package e2e

import (
	"flag"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var soak = flag.Bool("soak", false, "run the long fault soaks (kill -9 loops, many resets)")

// TestSoakKillLoop kills the server with SIGKILL again and again in the middle of an
// upload and resumes it each time from what HEAD reports. Run with -soak.
func TestSoakKillLoop(t *testing.T) {
	if !*soak {
		t.Skip("soak test: run with -soak")
	}
	const kills = 25
	dir := t.TempDir()
	data := randomBytes(t, 64<<20)
	s := startServerIn(t, dir, baseConfig+defaultSets)
	res, _ := create(t, s.URL+"/uploads/files/", "soak.bin", int64(len(data)))
	path := strings.TrimPrefix(res.Header.Get("Location"), s.URL)
	dataFile := filepath.Join(dir, "data", "files", uploadID(path))
	var acked, lost int64
	for i := range kills {
		res, _ := do(t, http.MethodHead, s.URL+path, nil, nil)
		offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
		if offset < acked {
			lost += acked - offset
		}
		// Send part of the rest and acknowledge it, then start more and kill the
		// server in the middle of it.
		step := int64(len(data)-int(offset)) / int64(kills-i+1)
		if r, body := patch(t, s.URL+path, offset, data[offset:offset+step]); r.StatusCode != 204 {
			t.Fatalf("kill %d: PATCH %d %s", i, r.StatusCode, body)
		}
		acked = offset + step
		pw, _ := slowPatch(t, s.URL+path, acked, len(data)-int(acked))
		part := rand.Int64N(step + 1)
		pw.Write(data[acked : acked+part])
		waitSize(t, dataFile, acked+part)
		s.Kill()
		pw.Close()
		s = startServerIn(t, dir, baseConfig+defaultSets)
	}
	res, _ = do(t, http.MethodHead, s.URL+path, nil, nil)
	offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if r, body := patch(t, s.URL+path, offset, data[offset:]); r.StatusCode != 204 {
		t.Fatalf("final PATCH %d %s", r.StatusCode, body)
	}
	if lost != 0 || fileSHA(t, filepath.Join(s.Uploads("files"), "soak.bin")) != sha(data) || len(files(t, s.Uploads("files"))) != 1 {
		t.Fatalf("after %d kills: %d acknowledged bytes lost, or the file differs", kills, lost)
	}
	t.Logf("%d kill -9 survived, 0 acknowledged bytes lost, SHA-256 matches", kills)
}

// TestSoakFlakyNetwork sends 60 MiB with tus-js-client through a connection reset
// every 512 KiB. Run with -soak.
func TestSoakFlakyNetwork(t *testing.T) {
	if !*soak {
		t.Skip("soak test: run with -soak")
	}
	s := startServer(t, defaultSets)
	base, p := toxic(t, s)
	addToxic(t, p, `{"name":"cut","type":"limit_data","stream":"upstream","toxicity":1,"attributes":{"bytes":524288}}`)
	data := randomBytes(t, 60<<20)
	r := tusJS(t, jsOptions{Endpoint: base + "/uploads/files/", File: writeTemp(t, data), Name: "soak.bin", RetryDelays: make([]int, 10), TimeoutMs: 110_000})
	if !r.OK || fileSHA(t, filepath.Join(s.Uploads("files"), "soak.bin")) != sha(data) {
		t.Fatalf("%+v", r)
	}
	t.Logf("60 MiB through a connection cut every 512 KiB: %d responses, SHA-256 matches", r.Requests)
}
