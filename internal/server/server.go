// Package server is the uploadsets HTTP server: one tusd handler per upload set on a
// gorilla/mux router, the file server, the JSON API, health, metrics and the web page,
// and the daemon's lifecycle.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/auth"
	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/images"
	"github.com/uploadsets/uploadsets/internal/notify"
	"github.com/uploadsets/uploadsets/internal/reqid"
	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/store/disk"
	"github.com/uploadsets/uploadsets/internal/store/s3uploads"
	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/sets"
)

// uploadSet is one set at run time.
type uploadSet struct {
	set      *sets.Set
	verifier *auth.Verifier // nil for a set without auth
	store    store.Uploads
	dest     store.Destination
	scratch  string // a local directory for what the image step makes of an upload in S3
	hooks    *hooks.Set
	locker   handler.Locker
	tus      *handler.UnroutedHandler
}

// lockTimeout is how long a request waits for an upload's lock. With the hand-off,
// the holder lets go within milliseconds; only a placement in progress makes one wait.
const lockTimeout = 20 * time.Second

// Server serves the upload sets of a config, and of the configs it is reloaded with.
type Server struct {
	log     hclog.Logger
	metrics *metrics
	outbox  *notify.Outbox    // nil without notify blocks
	images  *images.Processor // nil until a set has an image block
	// inFlight holds the requests that may be reading an upload body: shutdown cuts
	// them so that they store what they received and end, instead of holding the
	// process until their clients finish.
	inFlight inFlight
	// current is the config being served; a reload swaps it in one step, and
	// requests already running finish on the one they started with.
	current atomic.Pointer[instance]

	mu sync.Mutex // serialises reloads; guards what follows
	// A set's lock and store outlive its reloads: two requests for one upload must
	// meet at one lock whichever config admitted them, and one janitor looks after
	// each data directory.
	lockers  map[string]handler.Locker
	stores   map[string]*disk.Store
	s3stores map[string]*s3uploads.Store
	s3       *s3.Client          // when data_dir is on S3
	records  *disk.Records       // every set's, in data_dir (a reload may not move it)
	shared   *shared             // Redis, when the config has a redis block
	dests    []store.Destination // every destination opened, closed by Close
}

// instance is one config at run time.
type instance struct {
	*Server
	cfg   *sets.Config
	sets  map[string]*uploadSet
	order []*uploadSet
	// retired are sets a reload removed: their uploads in progress can still be
	// resumed and finished, but nothing new is created in them.
	retired map[string]*uploadSet
	router  http.Handler
}

// New builds the server for cfg: it opens every set's store and destination.
func New(cfg *sets.Config, log hclog.Logger) (*Server, error) {
	s := &Server{log: log, metrics: newMetrics(), lockers: map[string]handler.Locker{}, stores: map[string]*disk.Store{}, s3stores: map[string]*s3uploads.Store{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.shared, err = openShared(cfg, log); err != nil {
		s.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	if err := s.openData(cfg); err != nil {
		s.Close()
		return nil, err
	}
	if s.outbox, err = openOutbox(cfg, s); err != nil {
		s.Close()
		return nil, fmt.Errorf("notify outbox: %w", err)
	}
	if s.outbox != nil {
		s.metrics.registry.MustRegister(s.outbox.Collector())
	}
	inst, err := s.build(cfg, nil)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.metrics.register(inst.all())
	s.current.Store(inst)
	inst.placePending(context.Background(), inst.order)
	return s, nil
}

// openData opens what every set's uploads share: the record log on local disk, or
// the S3 client.
func (s *Server) openData(cfg *sets.Config) error {
	if cfg.DataDir.IsS3() {
		var err error
		if s.s3, err = s3Client(cfg.S3); err != nil {
			return fmt.Errorf("s3: %w", err)
		}
		checked := map[string]bool{}
		for what, loc := range map[string]sets.Location{"data_dir": cfg.DataDir} {
			checked[loc.Bucket] = true
			if err := checkBucket(s.s3, loc.Bucket, what); err != nil {
				return fmt.Errorf("s3: %w", err)
			}
		}
		for _, set := range cfg.Sets {
			if b := set.Destination.Bucket; !checked[b] {
				checked[b] = true
				if err := checkBucket(s.s3, b, fmt.Sprintf("the destination of set %q", set.Name)); err != nil {
					return fmt.Errorf("s3: %w", err)
				}
			}
		}
		return nil
	}
	if err := durable.MkdirAll(cfg.DataDir.Path, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	var err error
	if s.records, err = disk.OpenRecords(filepath.Join(cfg.DataDir.Path, "uploads.db")); err == nil {
		// bbolt syncs its file's contents, not the entry that names it.
		err = durable.SyncDir(cfg.DataDir.Path)
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// build makes the instance of cfg, reusing what the running one (old, if any) has of
// sets that did not change.
func (s *Server) build(cfg *sets.Config, old *instance) (*instance, error) {
	inst := &instance{Server: s, cfg: cfg, sets: map[string]*uploadSet{}, retired: map[string]*uploadSet{}}
	for _, set := range cfg.Sets {
		var prev *uploadSet
		if old != nil {
			prev = old.sets[set.Name]
			if prev == nil {
				prev = old.retired[set.Name]
			}
		}
		us, err := s.openSet(cfg, set, prev, old)
		if err != nil {
			return nil, fmt.Errorf("set %q: %w", set.Name, err)
		}
		inst.sets[set.Name] = us
		inst.order = append(inst.order, us)
	}
	if old != nil {
		for name, us := range old.sets {
			if inst.sets[name] == nil {
				inst.retired[name] = us
			}
		}
		for name, us := range old.retired {
			if inst.sets[name] == nil {
				inst.retired[name] = us
			}
		}
	}
	inst.router = inst.routes()
	return inst, nil
}

// all is every set with uploads to look after: the configured ones and the retired.
func (inst *instance) all() []*uploadSet {
	all := slices.Clone(inst.order)
	for _, us := range inst.retired {
		all = append(all, us)
	}
	return all
}

func (s *Server) openSet(cfg *sets.Config, set *sets.Set, prev *uploadSet, old *instance) (*uploadSet, error) {
	if prev != nil && sameSet(prev.set, set) && sameServing(old.cfg, cfg) {
		return prev, nil
	}
	log := s.log.Named(set.Name)
	ups, dest, err := s.openBackends(cfg, set, prev, log)
	if err != nil {
		return nil, err
	}
	us := &uploadSet{set: set, store: ups, dest: dest, scratch: scratchDir(set)}
	us.hooks = &hooks.Set{Set: set, Store: ups, Placer: dest, Log: log, Events: s.metrics.event}
	us.hooks.Announce = s.announcer(us)
	if spec, ok := images.SpecFor(set); ok {
		p, err := s.imageProcessor(cfg.ImageWorkers)
		if err != nil {
			return nil, fmt.Errorf("image processing: %w", err)
		}
		us.hooks.Process = s.processImages(us, p, spec)
	}
	if set.Auth != nil {
		us.verifier = auth.NewVerifier(set.Name, set.Auth.Key)
	}

	composer := handler.NewStoreComposer()
	ups.UseIn(composer)
	us.locker = s.lockerOf(set.Name)
	composer.UseLocker(us.locker)

	cors := handler.DefaultCorsConfig
	cors.ExposeHeaders += ", Upload-File-Name, Upload-File-Url, Upload-Expires, Tus-Checksum-Algorithm, WWW-Authenticate, X-Request-ID"
	cors.AllowHeaders += ", Upload-Checksum"
	tc := handler.Config{
		StoreComposer: composer,
		BasePath:      cfg.PublicURL + "/uploads/" + set.Name + "/",
		// The set's size rule is enforced by the creation hook, which can say which
		// set and which rule; tusd's own check would answer first with neither.
		MaxSize: 0,
		Cors:    &cors,
		Logger:  newTusLogger(log.Named("tus")),
		// tusd keeps each request's context (and a goroutine and a timer with it)
		// alive this long after the request ends, for stores that finish writing
		// after the response. This store has written and synced everything before
		// it returns, and placement runs without the request's cancellation, so a
		// long grace only holds memory: at 10 s, a burst of small uploads keeps
		// thousands of idle goroutines.
		GracefulRequestCompletionTimeout: 100 * time.Millisecond,
		AcquireLockTimeout:               lockTimeout,
		NetworkTimeout:                   cfg.NetworkTimeout,
		// Forwarding headers reach tusd only from trusted proxies (normaliseForwarding),
		// so its Location agrees with the URLs built in baseURL.
		RespectForwardedHeaders: true,
		// The IETF resumable-upload draft (Apple's URLSession, tus-js-client's
		// ietf-draft protocol), under the same callbacks and store as tus.
		EnableExperimentalProtocol: true,
	}
	us.hooks.Config(&tc)
	// The ID is chosen here rather than by the store, so that a POST that fails
	// after creating its upload can still say where the upload is (tusWriter).
	admit := tc.PreUploadCreateCallback
	tc.PreUploadCreateCallback = func(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
		resp, changes, err := admit(ev)
		if err == nil {
			changes.ID = uploads.NewID()
			noteCreated(ev.Context, changes.ID)
		}
		return resp, changes, err
	}
	if us.tus, err = handler.NewUnroutedHandler(tc); err != nil {
		return nil, err
	}
	if prev != nil {
		// tusd's counters of the set go on from where they were, not from zero.
		us.tus.Metrics = prev.tus.Metrics
	}
	return us, nil
}

// Handler is the whole HTTP surface, as the current config has it.
func (s *Server) Handler() http.Handler {
	// The request ID and the forwarding headers are seen to here, inline rather than
	// as middleware: each frame between net/http and a body read stays on the stack
	// of a held upload (see routes.go).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inst := s.current.Load()
		r = reqid.Tag(w, r)
		inst.normaliseForwarding(r)
		inst.router.ServeHTTP(w, r)
	})
}

// Serve serves on ln until ctx is done, then shuts down: it stops accepting, cuts
// in-flight uploads (which keep what they received) and waits for handlers, up to
// the configured shutdown timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		ConnContext:       lowWater,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go s.janitor(ctx)
	if s.outbox != nil {
		go s.outbox.Run(ctx)
	}
	s.log.Info("Serving", "url", "http://"+ln.Addr().String(), "sets", len(s.current.Load().order))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	timeout := s.current.Load().cfg.ShutdownTimeout
	s.log.Info("ShuttingDown", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopped := make(chan struct{})
	go s.inFlight.cutAll(stopped)
	err := srv.Shutdown(sctx)
	close(stopped)
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutdown (shutdown_timeout %s): %w", timeout, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close releases the sets' destinations.
func (s *Server) Close() {
	for _, d := range s.dests {
		d.Close()
	}
	if s.outbox != nil {
		s.outbox.Close()
	}
	if s.records != nil {
		s.records.Close()
	}
	if s.shared != nil {
		s.shared.Close()
	}
}

// set is the set a request names, retired or not.
func (inst *instance) set(r *http.Request) *uploadSet {
	name := mux.Vars(r)["set"]
	if us := inst.sets[name]; us != nil {
		return us
	}
	return inst.retired[name]
}
