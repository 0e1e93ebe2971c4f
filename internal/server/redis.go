package server

import (
	"context"
	"fmt"

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
	return &shared{client: client, locker: redislock.New(redislock.Options{Client: client})}, nil
}

func (r *shared) Close() {
	r.locker.Close()
	r.client.Close()
}

type redisLog struct{ log hclog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("Redis", "message", fmt.Sprintf(format, v...))
}
