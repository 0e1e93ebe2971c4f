package sets

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Notify is a notify block: an app that is told what happened to uploads by signed
// POSTs (Standard Webhooks v1). Its fields are those of notify.Target, in the same
// order, so the server converts one into the other with notify.Target(*n).
type Notify struct {
	Name    string
	URL     string
	Key     []byte        // the HMAC key: the base64 after "whsec_" in secret_file, decoded
	Sets    []string      // nil = every set
	Events  []string      // nil = every event
	Timeout time.Duration // per attempt; default 10s
	MaxAge  time.Duration // retrying stops this long after the event; default 72h
}

// NotifyEvents are the event types a notify block may ask for.
var NotifyEvents = []string{"upload.created", "upload.placed", "upload.rejected", "upload.terminated", "upload.expired"}

// minWebhookKey is the shortest key accepted: Standard Webhooks asks for 24 to 64 bytes.
const minWebhookKey = 24

var notifySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "url", Required: true},
		{Name: "secret_file", Required: true},
		{Name: "sets"},
		{Name: "events"},
		{Name: "timeout"},
		{Name: "max_age"},
	},
}

// notifies decodes the notify blocks; sets are the declared sets they may name.
func (d *decoder) notifies(blocks hcl.Blocks, sets []*Set) []*Notify {
	var out []*Notify
	first := map[string]hcl.Range{}
	for _, b := range blocks {
		name, label, _, ok := d.labelled(b, "notify", "", first)
		if !ok {
			continue
		}
		// The name labels metrics and log lines and keys the outbox on disk.
		if !setName.MatchString(name) {
			d.add(errorAt(label, fmt.Sprintf(`invalid notify name %q: use 1 to 63 lower-case letters, digits, "_" or "-", starting with a letter or digit`, name)))
		}
		out = append(out, d.notify(b, name, sets))
	}
	return out
}

func (d *decoder) notify(b *hcl.Block, name string, sets []*Set) *Notify {
	content, diags := b.Body.Content(notifySchema)
	d.add(diags...)
	attrs := content.Attributes
	n := &Notify{Name: name, Timeout: 10 * time.Second, MaxAge: 72 * time.Hour}
	d.notifyURL(attrs["url"], &n.URL)
	d.webhookSecret(attrs["secret_file"], &n.Key)
	var setNames []string
	for _, s := range sets {
		setNames = append(setNames, s.Name)
	}
	d.names(attrs["sets"], "set", setNames, &n.Sets)
	d.names(attrs["events"], "event", NotifyEvents, &n.Events)
	d.duration(attrs["timeout"], &n.Timeout)
	d.duration(attrs["max_age"], &n.MaxAge)
	return n
}

// notifyURL differs from baseURL: nothing is appended to it, so a query is fine, and it
// must be there.
func (d *decoder) notifyURL(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	u, err := url.Parse(s)
	var why string
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		why = `must be an absolute http or https URL, like "https://app.example.com/hooks/uploads"`
	case u.User != nil:
		// The signature is what proves the sender; a password here would end up in the
		// delivery errors that are logged.
		why = "must not contain a user name or password: the signature authenticates uploadsets"
	case u.Fragment != "" || strings.Contains(s, "#"):
		why = "must not have a fragment"
	}
	if why != "" {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid url %q: %s", s, why)))
		return false
	}
	*dst = s
	return true
}

// secret reads a Standard Webhooks secret, "whsec_" and a base64 key, from a file.
func (d *decoder) webhookSecret(attr *hcl.Attribute, dst *[]byte) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	const howTo = `write "whsec_" and the base64 of at least 24 random bytes, like: printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)"`
	fail := func(msg string) bool {
		d.add(errorAt(attr.Expr.Range(), msg))
		return false
	}
	if s == "" {
		return fail("secret_file must not be empty")
	}
	path := d.path(s)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fail(fmt.Sprintf("cannot read secret_file: %v", err))
	}
	raw = bytes.TrimRight(raw, "\r\n")
	if len(raw) == 0 {
		return fail(fmt.Sprintf("secret_file %s is empty: %s", path, howTo))
	}
	b64, found := bytes.CutPrefix(raw, []byte("whsec_"))
	if !found {
		// Never quote the file: it may be a key in another format.
		return fail(fmt.Sprintf(`secret_file %s does not start with "whsec_": %s`, path, howTo))
	}
	key, err := base64.StdEncoding.AppendDecode(nil, b64)
	if err != nil {
		return fail(fmt.Sprintf(`secret_file %s: what follows "whsec_" is not standard base64: %s`, path, howTo))
	}
	if len(key) < minWebhookKey {
		return fail(fmt.Sprintf("secret_file %s holds a %d-byte key, too short to sign with: %s", path, len(key), howTo))
	}
	*dst = key
	return true
}

// names reads a non-empty list of strings, each one of known; an unknown one is
// reported at its own element, so each element must be written out in the list.
func (d *decoder) names(attr *hcl.Attribute, what string, known []string, dst *[]string) bool {
	if attr == nil || !d.parsed(attr) {
		return false
	}
	if val, diags := attr.Expr.Value(nil); !diags.HasErrors() && val.IsNull() {
		return false
	}
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a list of %s names in quotes, like ["photos"]`, attr.Name, what)))
		return false
	}
	if len(exprs) == 0 {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must name at least one %s; leave it out for all of them", attr.Name, what)))
		return false
	}
	example := "photos"
	if len(known) > 0 {
		example = known[0]
	}
	var out []string
	good := true
	for _, e := range exprs {
		v, diags := e.Value(nil)
		if diags.HasErrors() || v.IsNull() || v.Type() != cty.String {
			d.add(errorAt(e.Range(), fmt.Sprintf(`%s must be a list of %s names in quotes, like [%q]`, attr.Name, what, example)))
			good = false
			continue
		}
		s := v.AsString()
		if !slices.Contains(known, s) {
			d.add(errorAt(e.Range(), fmt.Sprintf("unknown %s %q in %s; %ss are: %s", what, s, attr.Name, what, strings.Join(known, ", "))))
			good = false
			continue
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if good {
		*dst = out
	}
	return good
}
