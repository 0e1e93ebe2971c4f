package server

import (
	"context"
	"fmt"
	"reflect"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/uploadsets/uploadsets/sets"
)

// Reload swaps in cfg, Caddy's way: everything the new config needs is opened first,
// then it replaces the running one in one step, and requests already running end on
// the config they started with. Sets that did not change keep serving as they were;
// a changed set's policy applies to uploads created from then on, while uploads in
// progress keep their lock, their store and the limits they were admitted with; a
// removed set keeps its uploads in progress resumable until they finish or expire,
// but takes no new ones. On an error nothing changes.
//
// What cannot change without a restart (listen, data_dir, the log's format) keeps its
// running value, and each such change is logged.
func (s *Server) Reload(cfg *sets.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.current.Load()
	// S3 and redis are set up once, at start: changing them needs a restart.
	if diags := cfg.ReloadableFrom(old.cfg); diags.HasErrors() {
		s.reloadFailed(diags)
		return diags
	}
	for _, c := range []struct {
		attr     string
		from, to *string
	}{
		{"listen", &old.cfg.Listen, &cfg.Listen},
		{"data_dir", &old.cfg.DataDir.Path, &cfg.DataDir.Path},
		{"log.format", &old.cfg.LogFormat, &cfg.LogFormat},
	} {
		if *c.from != *c.to {
			s.log.Warn("ReloadNeedsRestart", "attribute", c.attr, "running", *c.from, "config", *c.to)
			*c.to = *c.from
		}
	}
	if !reflect.DeepEqual(old.cfg.Notify, cfg.Notify) {
		s.log.Warn("ReloadNeedsRestart", "attribute", "notify", "why", "the outbox's targets are fixed while it runs")
		cfg.Notify = old.cfg.Notify
	}
	if diags := cfg.ProbeDirs(true); diags.HasErrors() {
		s.reloadFailed(diags)
		return diags
	}
	dests := len(s.dests)
	inst, err := s.build(cfg, old)
	if err != nil {
		for _, d := range s.dests[dests:] {
			d.Close()
		}
		s.dests = s.dests[:dests]
		s.metrics.reloads.WithLabelValues("failed").Inc()
		s.log.Error("ReloadFailed", "error", err)
		return err
	}
	var added []*uploadSet
	for _, us := range inst.order {
		if old.sets[us.set.Name] == nil && old.retired[us.set.Name] == nil {
			added = append(added, us)
		}
	}
	s.metrics.setSets(inst.all())
	s.log.SetLevel(hclog.LevelFromString(cfg.LogLevel))
	s.current.Store(inst)
	inst.placePending(context.Background(), added)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.log.Info("Reloaded", "config", cfg.Filename, "sets", len(inst.order), "added", len(added), "retired", len(inst.retired))
	return nil
}

// ReloadFailed logs a config that could not be loaded, each problem with its
// position, and keeps the running one.
func (s *Server) ReloadFailed(diags hcl.Diagnostics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloadFailed(diags)
}

func (s *Server) reloadFailed(diags hcl.Diagnostics) {
	s.metrics.reloads.WithLabelValues("failed").Inc()
	for _, d := range diags {
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d,%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		s.log.Error("ReloadFailed", "at", pos, "problem", d.Summary, "kept", "the running config")
	}
}

// sameSet reports whether a set is unchanged by a reload; where its attributes are
// written in the file does not count.
func sameSet(a, b *sets.Set) bool {
	x, y := *a, *b
	x.DestinationAt, y.DestinationAt = hcl.Range{}, hcl.Range{}
	return reflect.DeepEqual(x, y)
}

// sameServing reports whether what every set's handler is built from is unchanged.
func sameServing(a, b *sets.Config) bool {
	return a.PublicURL == b.PublicURL && a.NetworkTimeout == b.NetworkTimeout
}
