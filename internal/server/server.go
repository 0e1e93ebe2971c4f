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
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/diskstore"
	"github.com/uploadsets/uploadsets/internal/placement"
	"github.com/uploadsets/uploadsets/internal/reqid"
	"github.com/uploadsets/uploadsets/sets"
)

// uploadSet is one set at run time.
type uploadSet struct {
	set    *sets.Set
	store  *diskstore.Store
	dest   *placement.Dir
	hooks  *hooks.Set
	locker handler.Locker
	tus    *handler.UnroutedHandler
}

// lockTimeout is how long a request waits for an upload's lock. With the hand-off,
// the holder lets go within milliseconds; only a placement in progress makes one wait.
const lockTimeout = 20 * time.Second

// Server serves every upload set of one config.
type Server struct {
	cfg     *sets.Config
	log     hclog.Logger
	sets    map[string]*uploadSet
	order   []*uploadSet
	router  *mux.Router
	metrics *metrics
	// inFlight holds the requests that may be reading an upload body: shutdown cuts
	// them so that they store what they received and end, instead of holding the
	// process until their clients finish.
	inFlight inFlight
}

// New builds the server for cfg: it opens every set's store and destination.
func New(cfg *sets.Config, log hclog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, sets: map[string]*uploadSet{}}
	s.metrics = newMetrics()
	for _, set := range cfg.Sets {
		us, err := s.openSet(set)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("set %q: %w", set.Name, err)
		}
		s.sets[set.Name] = us
		s.order = append(s.order, us)
	}
	s.metrics.register(s.order)
	s.router = s.routes()
	s.placePending(context.Background())
	return s, nil
}

func (s *Server) openSet(set *sets.Set) (*uploadSet, error) {
	log := s.log.Named(set.Name)
	dataDir := filepath.Join(s.cfg.DataDir, set.Name)
	store, err := diskstore.New(diskstore.Options{
		Dir: dataDir, Set: set.Name, Expire: set.ExpireAfter, FileMode: set.FileMode, MaxSize: set.MaxSize, Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	dest, err := placement.OpenDir(set.Destination, set.FileMode, set.DirMode)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if links, err := dest.Links(dataDir); err == nil && !links {
		log.Warn("PlacementCopies", "destination", set.Destination, "data_dir", s.cfg.DataDir,
			"why", "different file systems: every finished upload is copied into place instead of linked; put both on one file system")
	}
	us := &uploadSet{set: set, store: store, dest: dest}
	us.hooks = &hooks.Set{Set: set, Store: store, Placer: dest, Log: log, Events: s.metrics.event}

	composer := handler.NewStoreComposer()
	store.UseIn(composer)
	// In-process lock with prompt hand-off: a new request for an upload makes the
	// holder stop at once (tusd's filelocker would poll every 2 s). Swappable for a
	// distributed lock through this one call.
	us.locker = handoffLocker{inner: memorylocker.New()}
	composer.UseLocker(us.locker)

	cors := handler.DefaultCorsConfig
	cors.ExposeHeaders += ", Upload-File-Name, Upload-File-Url, Upload-Expires, Tus-Checksum-Algorithm"
	cors.AllowHeaders += ", Upload-Checksum"
	tc := handler.Config{
		StoreComposer: composer,
		BasePath:      s.cfg.PublicURL + "/uploads/" + set.Name + "/",
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
		NetworkTimeout:                   s.cfg.NetworkTimeout,
		// Forwarding headers reach tusd only from trusted proxies (trustForwarding),
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
			changes.ID = diskstore.NewID()
			noteCreated(ev.Context, changes.ID)
		}
		return resp, changes, err
	}
	if us.tus, err = handler.NewUnroutedHandler(tc); err != nil {
		return nil, err
	}
	return us, nil
}

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler { return reqid.Middleware(s.trustForwarding(s.router)) }

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
	s.log.Info("Serving", "url", "http://"+ln.Addr().String(), "sets", len(s.order))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("ShuttingDown", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	stopped := make(chan struct{})
	go s.inFlight.cutAll(stopped)
	err := srv.Shutdown(sctx)
	close(stopped)
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutdown (shutdown_timeout %s): %w", s.cfg.ShutdownTimeout, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close releases the sets' destinations.
func (s *Server) Close() {
	for _, us := range s.order {
		us.dest.Close()
	}
}

func (s *Server) set(r *http.Request) *uploadSet { return s.sets[mux.Vars(r)["set"]] }
