package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/uploadsets/uploadsets/internal/testsrv"
)

// cluster is two uploadsets instances on one config: data_dir and the destination in
// one S3 server (versitygw), locks in one Redis, as behind a load balancer without
// sticky sessions.
type cluster struct {
	a, b   *server
	s3     *testsrv.S3Server
	redis  *testsrv.RedisServer
	bucket string
}

func startCluster(t *testing.T, sets string) *cluster {
	t.Helper()
	return startClusterWith(t, sets, nil)
}

// startClusterWith also writes files (name → content) beside each instance's config.
func startClusterWith(t *testing.T, sets string, files map[string]string) *cluster {
	t.Helper()
	c := &cluster{s3: testsrv.S3(t), redis: testsrv.Redis(t)}
	c.bucket = c.s3.Bucket(t, "uploads")
	config := fmt.Sprintf(`
listen   = "127.0.0.1:0"
data_dir = "s3://%[1]s/partial/"
uploads_default_dest = "s3://%[1]s/files/"
s3 {
  endpoint   = %[2]q
  region     = "us-east-1"
  path_style = true
}
redis { url = %[3]q }
`, c.bucket, c.s3.Endpoint(), c.redis.URL()) + sets
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.a = startServerEnv(t, dirs[0], config, c.s3.Env()...)
	c.b = startServerEnv(t, dirs[1], config, c.s3.Env()...)
	return c
}

// on is url, an upload URL of one instance, as the other serves it.
func on(s *server, url string) string {
	i := strings.Index(url, "/uploads/")
	return s.URL + url[i:]
}

// object returns the bytes of the object at key (relative to the bucket), or nil.
func (c *cluster) object(t *testing.T, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := c.s3.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		return nil
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return b
}

// keys lists the bucket's keys under prefix.
func (c *cluster) keys(t *testing.T, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c.s3.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	return keys
}

const clusterSet = `set "files" { extensions = all }` + "\n"

// An upload begun on one instance resumes on the other in PATCHes of 256 KiB (below
// S3's 5 MiB part minimum); either instance answers HEAD with the final name, and
// the object holds exactly the bytes sent.
func TestUploadMovesBetweenInstances(t *testing.T) {
	c := startCluster(t, clusterSet)
	data := randomBytes(t, 1<<20+12345)
	res, body := create(t, c.a.URL+"/uploads/files/", "report.bin", int64(len(data)))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST on A: %d %s", res.StatusCode, body)
	}
	url := res.Header.Get("Location")
	const chunk = 256 << 10
	for off, i := 0, 0; off < len(data); off, i = off+chunk, i+1 {
		s := c.a
		if i%2 == 1 {
			s = c.b
		}
		if i > 0 {
			res, _ := do(t, http.MethodHead, on(s, url), nil, nil)
			if got := res.Header.Get("Upload-Offset"); got != strconv.Itoa(off) {
				t.Fatalf("HEAD on the other instance: offset %s, want %d", got, off)
			}
		}
		end := min(off+chunk, len(data))
		res, body := patch(t, on(s, url), int64(off), data[off:end])
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH at %d: %d %s", off, res.StatusCode, body)
		}
	}
	for _, s := range []*server{c.a, c.b} {
		res, _ := do(t, http.MethodHead, on(s, url), nil, nil)
		if res.Header.Get("Upload-File-Name") != "report.bin" || res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
			t.Errorf("HEAD after completion: %v", res.Header)
		}
	}
	got := c.object(t, "files/files/report.bin")
	if sum(got) != sum(data) {
		t.Fatalf("the object holds %d bytes, SHA-256 %s; sent %d, %s", len(got), sum(got), len(data), sum(data))
	}
	res, body = do(t, http.MethodGet, c.b.URL+"/files/files/report.bin", nil, map[string]string{"Range": "bytes=10-19"})
	if res.StatusCode != http.StatusPartialContent || body != string(data[10:20]) {
		t.Errorf("GET with Range through B: %d, %q", res.StatusCode, body)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// 20 uploads of one name at once (creation-with-upload), spread over both instances,
// become 20 objects.
func TestSameNameAcrossInstancesGivesDistinctObjects(t *testing.T) {
	c := startCluster(t, clusterSet)
	var wg sync.WaitGroup
	datas := make([][]byte, 20)
	for i := range datas {
		datas[i] = randomBytes(t, 1000+i)
		s := c.a
		if i%2 == 1 {
			s = c.b
		}
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/uploads/files/", bytes.NewReader(datas[i]))
			req.Header.Set("Tus-Resumable", "1.0.0")
			req.Header.Set("Upload-Length", strconv.Itoa(len(datas[i])))
			req.Header.Set("Upload-Metadata", encodeMeta(map[string]string{"filename": "same.bin"}))
			req.Header.Set("Content-Type", "application/offset+octet-stream")
			res, err := client.Do(req)
			if err != nil {
				t.Errorf("upload %d: %v", i, err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated || res.Header.Get("Upload-File-Name") == "" {
				t.Errorf("upload %d: %d, placed as %q", i, res.StatusCode, res.Header.Get("Upload-File-Name"))
			}
		})
	}
	wg.Wait()
	keys := c.keys(t, "files/")
	if len(keys) != 20 {
		t.Fatalf("%d objects under files/, want 20: %v", len(keys), keys)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[sum(c.object(t, k))] = true
	}
	for i, d := range datas {
		if !seen[sum(d)] {
			t.Errorf("upload %d is in no object", i)
		}
	}
}

// Two PATCHes of one upload at one offset, one on each instance: the second makes
// the first let go (through Redis), and the bytes never interleave.
func TestPatchesOnTwoInstancesNeverInterleave(t *testing.T) {
	c := startCluster(t, clusterSet)
	data := randomBytes(t, 512<<10)
	res, _ := create(t, c.a.URL+"/uploads/files/", "race.bin", int64(len(data)))
	url := res.Header.Get("Location")

	// A slow PATCH on A: the first 64 KiB, then it stalls.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, on(c.a, url), pr)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.ContentLength = int64(len(data))
	slow := make(chan *http.Response, 1)
	go func() {
		res, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		slow <- res
	}()
	pw.Write(bytes.Repeat([]byte{0xAA}, 64<<10)) // not the upload's bytes: never to be kept past what B says
	time.Sleep(200 * time.Millisecond)

	// B resumes at whatever offset it is told, with the real bytes.
	deadline := time.Now().Add(20 * time.Second)
	var off int64
	for {
		res, _ := do(t, http.MethodHead, on(c.b, url), nil, nil)
		off, _ = strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
		res, body := patch(t, on(c.b, url), off, data[off:])
		if res.StatusCode == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B never took over: %d %s", res.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pw.Close()
	select {
	case <-slow:
	case <-time.After(20 * time.Second):
		t.Fatal("A's PATCH never ended")
	}
	got := c.object(t, "files/files/race.bin")
	want := append(bytes.Repeat([]byte{0xAA}, int(off)), data[off:]...)
	if !bytes.Equal(got, want) {
		t.Errorf("the object (%d bytes) is not A's first %d bytes then B's: the PATCHes interleaved", len(got), off)
	}
}

// With Redis gone, requests that need a lock fail with 503 and change nothing; once
// it is back (empty: it holds nothing that must survive), the upload resumes.
func TestRedisDownFailsClosedAndRecovers(t *testing.T) {
	c := startCluster(t, clusterSet)
	data := randomBytes(t, 600<<10)
	res, _ := create(t, c.a.URL+"/uploads/files/", "later.bin", int64(len(data)))
	url := res.Header.Get("Location")
	if res, body := patch(t, url, 0, data[:300<<10]); res.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", res.StatusCode, body)
	}
	c.redis.Stop()
	res, body := patch(t, on(c.b, url), 300<<10, data[300<<10:])
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("PATCH with Redis down: %d %s, want 503", res.StatusCode, body)
	}
	waitLog(t, c.b, "LocksUnavailable", 1) // the operator is told
	c.redis.Start()
	res, _ = do(t, http.MethodHead, on(c.b, url), nil, nil)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(300<<10) {
		t.Fatalf("HEAD once Redis is back: offset %s, want %d", res.Header.Get("Upload-Offset"), 300<<10)
	}
	if res, body := patch(t, on(c.b, url), 300<<10, data[300<<10:]); res.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH once Redis is back: %d %s", res.StatusCode, body)
	}
	if sum(c.object(t, "files/files/later.bin")) != sum(data) {
		t.Error("the object is not the upload's bytes")
	}
}

// A file whose content is not what its name says leaves no object behind.
func TestContentMismatchOnS3LeavesNoObject(t *testing.T) {
	c := startCluster(t, `set "photos" { extensions = images }`+"\n")
	html := []byte("<html><script>alert(1)</script></html>" + strings.Repeat(" ", 500))
	res, _ := create(t, c.a.URL+"/uploads/photos/", "cute.png", int64(len(html)))
	url := res.Header.Get("Location")
	res, body := patch(t, on(c.b, url), 0, html)
	if res.StatusCode < 400 || !strings.Contains(body, `"photos"`) {
		t.Fatalf("PATCH of HTML named .png: %d %s, want a refusal naming the set", res.StatusCode, body)
	}
	if keys := c.keys(t, "files/"); len(keys) != 0 {
		t.Errorf("objects left in the destination: %v", keys)
	}
	if keys := c.keys(t, "partial/"); len(keys) > 1 {
		t.Errorf("objects left of the partial upload: %v (only its record may stay, to tell why)", keys)
	}
}

// A photo uploaded to an image set on S3 is processed from a local copy of its
// object: the placed object is the processed JPEG, its thumbnail is beside it, and
// the other instance reports both.
func TestImageSetOnS3(t *testing.T) {
	c := startCluster(t, `
set "photos" {
  extensions = images
  image {
    max_width  = 400
    max_height = 400
    format     = "jpeg"
  }
  thumbnail "small" {
    width  = 100
    height = 100
  }
}
`)
	data := photoPNG(t, 800, 600)
	url, last := upload(t, c.a.URL+"/uploads/photos/", "holiday.png", data, len(data))
	if got := last.Header.Get("Upload-File-Name"); got != "holiday.jpg" {
		t.Fatalf("Upload-File-Name %q, want holiday.jpg", got)
	}
	img, err := jpeg.Decode(bytes.NewReader(c.object(t, "files/photos/holiday.jpg")))
	if err != nil {
		t.Fatalf("the placed object is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 400 || b.Dy() != 300 {
		t.Errorf("placed image %v, want 400×300", b)
	}
	thumb, err := jpeg.Decode(bytes.NewReader(c.object(t, "files/photos/thumbs/small/holiday.jpg")))
	if err != nil || thumb.Bounds().Dx() > 100 || thumb.Bounds().Dy() > 100 {
		t.Errorf("thumbnail object: %v, %v", err, thumb)
	}
	id := url[strings.LastIndex(url, "/")+1:]
	_, body := do(t, http.MethodGet, c.b.URL+"/api/uploads/photos/"+id, nil, nil)
	if !strings.Contains(body, `"name":"holiday.jpg"`) || !strings.Contains(body, `thumbs/small/holiday.jpg`) {
		t.Errorf("status API on B: %s", body)
	}
}

// A server on S3 whose bucket does not exist, or that has no credentials, does not
// start, and says which bucket and why.
func TestS3ServerWithoutItsBucketDoesNotStart(t *testing.T) {
	s3 := testsrv.S3(t)
	dir := t.TempDir()
	config := fmt.Sprintf(`
listen   = "127.0.0.1:0"
data_dir = "s3://missing/partial/"
uploads_default_dest = "s3://missing/files/"
s3 {
  endpoint   = %q
  region     = "us-east-1"
  path_style = true
}
`, s3.Endpoint()) + clusterSet
	os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(config), 0o644)
	cmd := exec.Command(binary, "serve", "-config", "config.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), s3.Env()...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `missing`) || !strings.Contains(string(out), `of data_dir cannot be reached`) {
		t.Errorf("serve: %v\n%s", err, out)
	}
}

// The notification outbox is in S3 too: events of uploads placed through either
// instance reach the app, signed, once each (about: at least once), whether or not
// the instance that placed them survives (one is killed right after its last answer;
// internal/notify's tests show the other delivering a dead one's events).
func TestNotificationsFromTwoInstances(t *testing.T) {
	rc := newReceiver(t)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("thirty-two bytes of webhook key!"))
	c := startClusterWith(t, `
notify "app" {
  url         = "`+rc.URL+`/hooks"
  secret_file = "./notify.key"
  events      = ["upload.placed"]
  timeout     = "2s"
}
`+clusterSet, map[string]string{"notify.key": secret + "\n"})
	var ids []string
	for i := range 6 {
		s := c.a
		if i%2 == 1 {
			s = c.b
		}
		url, _ := upload(t, s.URL+"/uploads/files/", fmt.Sprintf("n%d.bin", i), randomBytes(t, 2000), 1<<20)
		ids = append(ids, "upload.placed "+url[strings.LastIndex(url, "/")+1:])
	}
	c.a.Kill()
	got := rc.wait(t, ids...)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ids {
		if err := wh.Verify(got[k].body, got[k].header); err != nil {
			t.Errorf("%s: signature: %v", k, err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a poll of the surviving instance and then some
	rc.mu.Lock()
	n := len(rc.got)
	rc.mu.Unlock()
	if n > len(ids)+1 {
		t.Errorf("%d deliveries for %d events", n, len(ids))
	}
}
