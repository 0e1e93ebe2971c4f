package server

import (
	"context"
	"slices"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/exp/slog"
)

// tusLog hands tusd's slog records to the hclog root. tusd logs several lines per
// request at Info, which costs real time per upload; only its warnings and errors pass,
// and uploadsets logs its own events (UploadPlaced, UploadRefused...) instead.
type tusLog struct {
	log hclog.Logger
	// attrs are kept as tusd gives them (it adds some to every request) and turned
	// into hclog's arguments only for the rare line that is logged.
	attrs []slog.Attr
}

func newTusLogger(log hclog.Logger) *slog.Logger {
	return slog.New(&tusLog{log: log})
}

func (h *tusLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *tusLog) Handle(_ context.Context, r slog.Record) error {
	args := make([]any, 0, 2*(len(h.attrs)+r.NumAttrs()))
	for _, a := range h.attrs {
		args = append(args, a.Key, a.Value.Any())
	}
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a.Key, a.Value.Any())
		return true
	})
	switch {
	case r.Message == "BodyReadError":
		// A body that ended early: a client pausing, reloading, losing its
		// network, or a cut by the hand-off or shutdown. What arrived is kept;
		// nothing on the server went wrong.
		h.log.Info(r.Message, args...)
	case r.Level >= slog.LevelError:
		h.log.Error(r.Message, args...)
	default:
		h.log.Warn(r.Message, args...)
	}
	return nil
}

func (h *tusLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &tusLog{log: h.log, attrs: slices.Concat(h.attrs, attrs)}
}

// WithGroup is not used by tusd; groups are flattened.
func (h *tusLog) WithGroup(string) slog.Handler { return h }
