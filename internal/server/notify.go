package server

import (
	"context"
	"mime"
	"path"
	"path/filepath"
	"strings"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/notify"
	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/sets"
)

// openOutbox opens the notification outbox of cfg, if it has notify blocks.
func openOutbox(cfg *sets.Config, s *Server) (*notify.Outbox, error) {
	if len(cfg.Notify) == 0 {
		return nil, nil
	}
	targets := make([]notify.Target, len(cfg.Notify))
	for i, n := range cfg.Notify {
		targets[i] = notify.Target(*n)
	}
	if cfg.DataDir.IsS3() {
		// Shared by every instance; a set's name never begins with a dot, so no
		// set's uploads are under .notify/.
		return notify.OpenS3(s.s3, cfg.DataDir.Bucket, cfg.DataDir.Prefix+".notify/", targets, s.log.Named("notify"))
	}
	if err := durable.MkdirAll(cfg.DataDir.Path, cfg.DirMode); err != nil {
		return nil, err
	}
	o, err := notify.Open(filepath.Join(cfg.DataDir.Path, "notify.db"), targets, s.log.Named("notify"))
	if err == nil {
		// bbolt syncs its file's contents, not the entry that names it.
		if err = durable.SyncDir(cfg.DataDir.Path); err != nil {
			o.Close()
		}
	}
	return o, err
}

// baseKey holds, in a tus request's context, this server's URL as the client knows it,
// for the URLs in notifications about that request.
type baseKey struct{}

// publish queues ev for the apps, durably; without notify blocks it does nothing.
func (s *Server) publish(ev notify.Event) error {
	if s.outbox == nil {
		return nil
	}
	return s.outbox.Publish(ev)
}

// eventData is what notifications say of the upload of rec in us.
func eventData(ctx context.Context, us *uploadSet, rec uploads.Record, name string) notify.Data {
	d := notify.Data{
		ID: rec.ID, Set: us.set.Name, Name: name, Size: rec.Size, Metadata: rec.MetaData, Owner: rec.Owner,
	}
	if name != "" {
		base, _ := ctx.Value(baseKey{}).(string)
		d.URL = us.hooks.FileURL(base, name)
		d.Type = mime.TypeByExtension(strings.ToLower(path.Ext(name)))
		if d.Type == "" {
			d.Type = "application/octet-stream"
		}
	}
	return d
}

// announcer is a set's hooks.Announce: placed and rejected uploads.
func (s *Server) announcer(us *uploadSet) func(context.Context, hooks.Announcement) error {
	return func(ctx context.Context, a hooks.Announcement) error {
		ev := notify.Event{Type: notify.Placed, Data: eventData(ctx, us, a.Record, a.Name)}
		base, _ := ctx.Value(baseKey{}).(string)
		ev.Data.Thumbnails = thumbURLs(us, base, a.Thumbs)
		if a.Event == hooks.EventRejected {
			ev.Type = notify.Rejected
			ev.Data.URL, ev.Data.Type, ev.Data.Reason = "", "", a.Reason
		}
		return s.publish(ev)
	}
}

var storeEvents = map[string]string{uploads.Created: notify.Created, uploads.Terminated: notify.Terminated, uploads.Expired: notify.Expired}

// storeChanges is a set's disk.Options.Changed: uploads created, terminated and
// expired, none of which has a file to link to; name is the client's.
func (s *Server) storeChanges(set string) func(kind string, rec uploads.Record) error {
	return func(kind string, rec uploads.Record) error {
		return s.publish(notify.Event{Type: storeEvents[kind], Data: notify.Data{
			ID: rec.ID, Set: set, Name: hooks.ClientName(rec.MetaData), Size: rec.Size, Metadata: rec.MetaData, Owner: rec.Owner,
		}})
	}
}

// thumbURLs are the URLs of thumbnails given by label and path.
func thumbURLs(us *uploadSet, base string, thumbs map[string]string) map[string]string {
	if len(thumbs) == 0 {
		return nil
	}
	urls := make(map[string]string, len(thumbs))
	for label, p := range thumbs {
		urls[label] = us.hooks.FileURL(base, p)
	}
	return urls
}
