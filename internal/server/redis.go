package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/uploadsets/uploadsets/internal/redislock"
	"github.com/uploadsets/uploadsets/sets"
)

// shared is what several instances on one config share through Redis: the upload
// locks. nil without a redis block, and then locks live in this process.
type shared struct {
	client *redis.Client
	locker *redislock.Locker
	log    hclog.Logger

	// During an outage every request fails to lock; one line every few seconds,
	// with the count since the last, says so without flooding the log.
	mu       sync.Mutex
	lastLog  time.Time
	unlogged int
}

// lockFailed logs a lock that Redis could not give.
func (r *shared) lockFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unlogged++
	if time.Since(r.lastLog) < 5*time.Second {
		return
	}
	r.log.Warn("LocksUnavailable", "requests", r.unlogged, "error", err,
		"why", "Redis cannot be reached: requests that need an upload's lock are answered 503 until it is back")
	r.lastLog, r.unlogged = time.Now(), 0
}

func openShared(cfg *sets.Config, log hclog.Logger) (*shared, error) {
	if cfg.Redis == nil {
		return nil, nil
	}
	client, err := redislock.NewClient(cfg.Redis.URL)
	if err != nil {
		return nil, err
	}
	// go-redis logs to stderr by itself ("failed to dial" while Redis is down, once
	// per attempt); the operator reads the server's log, in its format.
	redis.SetLogger(redisLog{log.Named("redis")})
	return &shared{client: client, locker: redislock.New(redislock.Options{Client: client}), log: log.Named("redis")}, nil
}

func (r *shared) Close() {
	r.locker.Close()
	r.client.Close()
}

type redisLog struct{ log hclog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("Redis", "message", fmt.Sprintf(format, v...))
}
