package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// The cost of what uploadsets adds for apps: a notify block (every upload event
// written to a durable outbox before the client is answered, then delivered) and
// upload tokens (an HS256 JWT verified on every request). tusd has neither, so it
// runs the plain small case in these rows.

// benchKey signs both the notifications and the upload tokens of the bench.
var benchKey = []byte("uploadsets bench key, 32 bytes!!")

// features is what a case switches on in the uploadsets config.
type features struct {
	notifyURL string  // a notify block to this receiver
	auth      bool    // an auth block on the set
	s3        *s3Side // data_dir and destination on this versitygw
	s3Bucket  string  // in this bucket
	noRedis   bool    // without the redis block although s3 has a Redis
}

func (f features) config(dir string) (string, error) {
	cfg := uploadsetsConfig
	if f.s3 != nil {
		redisURL := f.s3.redisURL
		if f.noRedis {
			redisURL = ""
		}
		cfg = s3Config(f.s3.endpoint, f.s3Bucket, redisURL)
	}
	if f.notifyURL != "" {
		key := "whsec_" + base64.StdEncoding.EncodeToString(benchKey)
		if err := os.WriteFile(filepath.Join(dir, "notify.key"), []byte(key), 0o600); err != nil {
			return "", err
		}
		cfg += fmt.Sprintf("notify \"bench\" {\n  url = %q\n  secret_file = \"./notify.key\"\n  events = [\"upload.placed\"]\n}\n", f.notifyURL)
	}
	if f.auth {
		if err := os.WriteFile(filepath.Join(dir, "jwt.key"), benchKey, 0o600); err != nil {
			return "", err
		}
		cfg = cfg[:len(cfg)-2] + "  auth {\n    secret_file = \"./jwt.key\"\n  }\n}\n"
	}
	return cfg, nil
}

// benchToken is an upload token for the bench set, made by hand (HS256) so that the
// bench needs no JWT library: the server's, golang-jwt, must accept it.
func benchToken() string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(fmt.Sprintf(`{"aud":"bench","sub":"bench","exp":%d}`, time.Now().Add(24*time.Hour).Unix())))
	mac := hmac.New(sha256.New, benchKey)
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

// receiver is the app of the notify case: it notes when each upload's event arrives.
type receiver struct {
	srv     *http.Server
	url     string
	mu      sync.Mutex
	arrived map[string]time.Time
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{url: "http://" + ln.Addr().String() + "/hook", arrived: map[string]time.Time{}}
	rc.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Data struct{ ID string } }
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &ev)
		rc.mu.Lock()
		if _, seen := rc.arrived[ev.Data.ID]; !seen {
			rc.arrived[ev.Data.ID] = time.Now()
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go rc.srv.Serve(ln)
	return rc, nil
}

func (rc *receiver) stop() { rc.srv.Close() }

// caseNotify: the small case (POST + PATCH) with a notify block; besides CPU and
// uploads/s, how long from the completing response to the event's arrival, and how
// many events per second arrive.
func caseNotify(ctx context.Context, s *server, rc *receiver, n, workers int, size int64) (metrics, error) {
	c := &tusClient{hc: &http.Client{Transport: newTransport(2 * workers)}, endpoint: s.endpoint}
	defer c.hc.CloseIdleConnections()
	if err := runWorkers(ctx, workers, workers, func(i int) (string, error) {
		return upload(ctx, c, s, size, fmt.Sprintf("w-%d.bin", i), false)
	}); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var mu sync.Mutex
	done := map[string]time.Time{}
	cpu0, _ := s.cpu()
	t0 := time.Now()
	err := runWorkers(ctx, n, workers, func(i int) (string, error) {
		cr, err := c.create(ctx, size, fmt.Sprintf("f-%d.bin", i), nil, 0)
		if err != nil {
			return "", err
		}
		if _, _, _, err := c.patch(ctx, cr.url, 0, &gen{0, size}, size); err != nil {
			return "", err
		}
		mu.Lock()
		done[cr.id] = time.Now()
		mu.Unlock()
		return "", nil
	})
	wall := time.Since(t0)
	cpu1, _ := s.cpu()
	if err != nil {
		return nil, err
	}
	m := metrics{
		"notify.cpu_ms": float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(n),
		"notify.ups":    float64(n) / wall.Seconds(),
	}
	if rc == nil {
		return m, nil // tusd: nothing to deliver
	}
	deadline := time.Now().Add(60 * time.Second)
	var lat []time.Duration
	var first, last time.Time
	for {
		rc.mu.Lock()
		lat, first, last = lat[:0], time.Time{}, time.Time{}
		for id, end := range done {
			at, ok := rc.arrived[id]
			if !ok {
				continue
			}
			lat = append(lat, at.Sub(end))
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
		rc.mu.Unlock()
		if len(lat) == len(done) {
			break
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("%d of %d events arrived within 60s", len(lat), len(done))
		}
		time.Sleep(20 * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	m["notify.latency_p50_ms"] = ms(lat[len(lat)/2])
	m["notify.latency_p99_ms"] = ms(lat[len(lat)*99/100])
	m["notify.events_per_s"] = float64(len(lat)) / last.Sub(t0).Seconds()
	return m, nil
}

// caseAuth: the small case with an upload token on every request.
func caseAuth(ctx context.Context, s *server, n, workers int, size int64, auth bool) (metrics, error) {
	hc := &http.Client{Transport: newTransport(2 * workers)}
	if auth {
		hc.Transport = bearer{token: "Bearer " + benchToken(), next: hc.Transport}
	}
	c := &tusClient{hc: hc, endpoint: s.endpoint}
	defer hc.CloseIdleConnections()
	m, err := caseSmallWith(ctx, s, c, n, workers, size, false, "auth")
	return m, err
}

// bearer adds an upload token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", b.token)
	return b.next.RoundTrip(r)
}
