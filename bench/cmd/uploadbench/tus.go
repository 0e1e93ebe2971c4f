package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// The upload content is one 1 MiB pseudo-random block repeated: it streams
// without holding the file in memory and its SHA-256 is computed before the
// server is measured, so hashing never competes with the server for CPU.
const blockSize = 1 << 20

var block = func() []byte {
	b := make([]byte, blockSize)
	r := rand.New(rand.NewChaCha8([32]byte{'u', 'p', 'l', 'o', 'a', 'd', 's', 'e', 't', 's'}))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}()

// gen streams the bytes [off, end) of the content.
type gen struct{ off, end int64 }

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.end {
		return 0, io.EOF
	}
	i := g.off % blockSize
	n := int64(len(p))
	n = min(n, blockSize-i, g.end-g.off)
	copy(p, block[i:i+n])
	g.off += n
	return int(n), nil
}

// WriteTo lets net/http write straight from the block, up to 1 MiB per write,
// so the client spends as little CPU as possible.
func (g *gen) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for g.off < g.end {
		i := g.off % blockSize
		n := min(blockSize-i, g.end-g.off)
		m, err := w.Write(block[i : i+n])
		g.off += int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

var shaCache = map[int64]string{}

// contentSHA is the SHA-256 of the first size bytes of the content.
func contentSHA(size int64) string {
	if s, ok := shaCache[size]; ok {
		return s
	}
	h := sha256.New()
	if _, err := io.Copy(h, struct{ io.Reader }{&gen{0, size}}); err != nil {
		panic(err)
	}
	s := hex.EncodeToString(h.Sum(nil))
	shaCache[size] = s
	return s
}

// checksumHeader is the Upload-Checksum of the content of size bytes.
func checksumHeader(size int64) string {
	sum, err := hex.DecodeString(contentSHA(size))
	if err != nil {
		panic(err)
	}
	return "sha256 " + base64.StdEncoding.EncodeToString(sum)
}

func fileSHA(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func newTransport(maxIdle int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        maxIdle,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     30 * time.Second,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      16 << 10,
		DisableCompression:  true,
	}
}

// tusClient speaks the few tus requests the cases need.
type tusClient struct {
	hc       *http.Client
	endpoint string
	checksum string // Upload-Checksum of every PATCH, when set
}

type created struct {
	url    string // absolute upload URL
	id     string
	offset int64
	name   string // Upload-File-Name when the POST completed the upload
}

func metadata(name string) string {
	return "filename " + base64.StdEncoding.EncodeToString([]byte(name))
}

// create POSTs a new upload of size bytes; with body non-nil it is a
// creation-with-upload carrying n bytes.
func (c *tusClient) create(ctx context.Context, size int64, name string, body io.Reader, n int64) (created, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, body)
	if err != nil {
		return created{}, err
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", metadata(name))
	if body != nil {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.ContentLength = n
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return created{}, err
	}
	drain(res)
	if res.StatusCode != http.StatusCreated {
		return created{}, fmt.Errorf("POST: %s", res.Status)
	}
	base, _ := url.Parse(c.endpoint)
	loc, err := base.Parse(res.Header.Get("Location"))
	if err != nil || res.Header.Get("Location") == "" {
		return created{}, fmt.Errorf("POST: bad Location %q", res.Header.Get("Location"))
	}
	cr := created{url: loc.String(), id: lastSegment(loc.Path), name: res.Header.Get("Upload-File-Name")}
	if o := res.Header.Get("Upload-Offset"); o != "" {
		cr.offset, _ = strconv.ParseInt(o, 10, 64)
	}
	return cr, nil
}

// patch sends n bytes from body at offset; it returns the new offset and the
// final name header if the server sent one.
func (c *tusClient) patch(ctx context.Context, u string, offset int64, body io.Reader, n int64) (int64, string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, body)
	if err != nil {
		return 0, "", 0, err
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	if c.checksum != "" {
		req.Header.Set("Upload-Checksum", c.checksum)
	}
	req.ContentLength = n
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	drain(res)
	if res.StatusCode != http.StatusNoContent {
		return 0, "", res.StatusCode, fmt.Errorf("PATCH: %s", res.Status)
	}
	off, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	return off, res.Header.Get("Upload-File-Name"), res.StatusCode, err
}

func (c *tusClient) head(ctx context.Context, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	drain(res)
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD: %s", res.Status)
	}
	return strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
}

// options checks the server still answers.
func (c *tusClient) options(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, c.endpoint, nil)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	drain(res)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("OPTIONS: %s", res.Status)
	}
	return nil
}

// upload does a whole upload of size bytes: POST then one PATCH, or one POST
// with the body when cwu is set. It returns the stored file's path.
func upload(ctx context.Context, c *tusClient, s *server, size int64, name string, cwu bool) (string, error) {
	if cwu {
		cr, err := c.create(ctx, size, name, &gen{0, size}, size)
		if err != nil {
			return "", err
		}
		if cr.offset != size {
			return "", fmt.Errorf("POST with body: offset %d, want %d", cr.offset, size)
		}
		return s.finalPath(cr.id, cr.name), nil
	}
	cr, err := c.create(ctx, size, name, nil, 0)
	if err != nil {
		return "", err
	}
	off, fname, _, err := c.patch(ctx, cr.url, 0, &gen{0, size}, size)
	if err != nil {
		return "", err
	}
	if off != size {
		return "", fmt.Errorf("PATCH: offset %d, want %d", off, size)
	}
	return s.finalPath(cr.id, fname), nil
}

func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
}

func lastSegment(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
