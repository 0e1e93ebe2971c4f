package sets

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

var setSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "extensions"},
		{Name: "allow"},
		{Name: "deny"},
		{Name: "max_size"},
		{Name: "naming"},
		{Name: "destination"},
		{Name: "url"},
		{Name: "expire_after"},
		{Name: "file_mode"},
		{Name: "dir_mode"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "auth"},
		{Type: "image"},
		{Type: "thumbnail", LabelNames: []string{"label"}},
	},
}

// setName keeps set names usable as one URL path segment and one directory name.
var setName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// setDecl is a decoded set with the positions the cross-set checks point at.
type setDecl struct {
	*Set
	label  hcl.Range
	dest   *hcl.Range // the value the destination comes from; nil when from defaults
	own    bool       // whether the set writes its destination
	destOK bool       // false when the destination is not worth comparing
}

// destRange is where a destination problem is shown: the value it comes from, else the
// set's name, from which it was derived.
func (s *setDecl) destRange() hcl.Range {
	if s.dest != nil {
		return *s.dest
	}
	return s.label
}

// labelled reads a block's one label and reports, at it, a label its kind already had,
// pointing at the first: HCL allows repeated labelled blocks, and gohcl does not check.
// ok is false when the label is missing or doubled (HCL has reported that).
func (d *decoder) labelled(b *hcl.Block, kind, where string, first map[string]hcl.Range) (name string, label hcl.Range, dup, ok bool) {
	if len(b.Labels) != 1 {
		return "", hcl.Range{}, false, false
	}
	name, label = b.Labels[0], b.LabelRanges[0]
	if prev, seen := first[name]; seen {
		d.add(errorAt(label, fmt.Sprintf("duplicate %s %q%s; first defined at %s:%d,%d", kind, name, where, prev.Filename, prev.Start.Line, prev.Start.Column)))
		return name, label, true, true
	}
	first[name] = label
	return name, label, false, true
}

// defaultDest is the uploads_default_dest attribute, if written: derived destinations
// are reported there, and not compared when defaultDestOK is false.
func (d *decoder) sets(blocks hcl.Blocks, cfg *Config, maxSizeOK bool, defaultDest *hcl.Attribute, defaultDestOK bool) []*setDecl {
	var decls []*setDecl
	first := map[string]hcl.Range{}
	for _, b := range blocks {
		name, label, dup, ok := d.labelled(b, "set", "", first)
		if !ok {
			continue
		}
		validName := setName.MatchString(name)
		if !validName {
			d.add(errorAt(label, fmt.Sprintf(`invalid set name %q: use 1 to 63 lower-case letters, digits, "_" or "-", starting with a letter or digit (it is part of URLs and paths)`, name)))
		}
		decl := d.set(b, name, label, cfg, maxSizeOK)
		// A duplicate would also "share" its destination, and a bad name derives a bad
		// one; one error each says enough.
		decl.destOK = decl.destOK && !dup && (validName || decl.own) && (defaultDestOK || decl.own)
		if decl.dest == nil && defaultDest != nil {
			decl.dest = defaultDest.Expr.Range().Ptr()
		}
		decl.DestinationAt = decl.destRange()
		decls = append(decls, decl)
	}
	return decls
}

func (d *decoder) set(b *hcl.Block, name string, label hcl.Range, cfg *Config, maxSizeOK bool) *setDecl {
	content, diags := b.Body.Content(setSchema)
	d.add(diags...)
	attrs := content.Attributes
	s := &Set{
		Name:        name,
		MaxSize:     cfg.MaxSize,
		Naming:      NamingOriginal,
		Destination: cfg.DefaultDest.Join(name),
		ExpireAfter: cfg.ExpireAfter,
		FileMode:    cfg.FileMode,
		DirMode:     cfg.DirMode,
	}
	if cfg.DefaultURL != "" {
		s.URL = trimSlash(cfg.DefaultURL) + "/" + name + "/"
	}
	s.Extensions = d.extensions(name, label, attrs)
	if d.size(attrs["max_size"], &s.MaxSize) && maxSizeOK && s.MaxSize > cfg.MaxSize {
		d.add(errorAt(attrs["max_size"].Expr.Range(), fmt.Sprintf("max_size of set %q (%s) is above the server-wide max_size (%s): raise that one too", name, FormatSize(s.MaxSize), FormatSize(cfg.MaxSize))))
	}
	d.naming(attrs["naming"], &s.Naming)
	decl := &setDecl{Set: s, label: label, destOK: true}
	if attr := attrs["destination"]; attr != nil {
		decl.dest, decl.own = attr.Expr.Range().Ptr(), true
		decl.destOK = d.location(attr, fmt.Sprintf("destination of set %q", name), &s.Destination)
	}
	// An explicit url = "" keeps the files served by uploadsets even when
	// uploads_default_url would put them elsewhere.
	if d.baseURL(attrs["url"], &s.URL) && s.URL != "" {
		s.URL = trimSlash(s.URL) + "/"
	}
	d.duration(attrs["expire_after"], &s.ExpireAfter)
	d.mode(attrs["file_mode"], 0o600, &s.FileMode)
	d.mode(attrs["dir_mode"], 0o700, &s.DirMode)
	if decl.destOK && s.Destination.IsS3() {
		where := "its destination is " + s.Destination.String()
		d.notOnS3(attrs["file_mode"], fmt.Sprintf(" of set %q", name), where)
		d.notOnS3(attrs["dir_mode"], fmt.Sprintf(" of set %q", name), where)
	}
	s.Auth = d.auth(content.Blocks, name)
	s.Image, s.Thumbnails = d.images(name, content.Blocks, s.Extensions)
	return decl
}

// extensions combines extensions (default: the defaults preset), allow and deny.
func (d *decoder) extensions(name string, label hcl.Range, attrs map[string]*hcl.Attribute) Extensions {
	spec := &extSpec{names: map[string]hcl.Range{}}
	for _, e := range presets["defaults"] {
		spec.names[e] = label
	}
	at := label // where "accepts nothing" is reported
	ok := true
	if attr := attrs["extensions"]; attr != nil {
		var diags hcl.Diagnostics
		spec, diags = d.evalExtensions(attr)
		d.add(diags...)
		ok = spec != nil && !diags.HasErrors()
		at = attr.Expr.Range()
	}
	if attr := attrs["allow"]; attr != nil {
		allow, diags := d.evalExtensions(attr)
		d.add(diags...)
		if ok = ok && allow != nil && !diags.HasErrors(); ok {
			for _, ext := range slices.Sorted(maps.Keys(allow.names)) {
				if spec.allows(ext) {
					d.add(warningAt(allow.names[ext], fmt.Sprintf("allow of %q has no effect: set %q already allows it", ext, name)))
				}
				spec.names[ext] = allow.names[ext]
			}
			if allow.any {
				spec.addAny(allow.except)
			}
		}
	}
	if attr := attrs["deny"]; attr != nil {
		deny, diags := d.evalExtensions(attr)
		d.add(diags...)
		if deny != nil && deny.any {
			d.add(errorAt(attr.Expr.Range(), "deny takes extensions, not all or all_except(...): narrow extensions instead"))
			ok = false
		}
		if ok = ok && deny != nil && !diags.HasErrors(); ok {
			for _, ext := range slices.Sorted(maps.Keys(deny.names)) {
				if !spec.allows(ext) {
					d.add(errorAt(deny.names[ext], fmt.Sprintf("deny of %q has no effect: set %q does not allow it", ext, name)))
					continue
				}
				delete(spec.names, ext)
				if spec.any {
					spec.except[ext] = struct{}{}
				}
			}
			at = attr.Expr.Range()
		}
	}
	if !ok {
		return Extensions{}
	}
	if spec.any {
		// Listed names widen a group: all_except(["exe"]) + ["exe"] allows exe.
		except := maps.Clone(spec.except)
		for ext := range spec.names {
			delete(except, ext)
		}
		return Extensions{any: true, names: except}
	}
	if len(spec.names) == 0 {
		d.add(errorAt(at, fmt.Sprintf("set %q accepts no extensions", name)))
	}
	names := make(map[string]struct{}, len(spec.names))
	for ext := range spec.names {
		names[ext] = struct{}{}
	}
	return Extensions{names: names}
}

// evalExtensions is evalExtensions for values the parser did not have to salvage.
func (d *decoder) evalExtensions(attr *hcl.Attribute) (*extSpec, hcl.Diagnostics) {
	if !d.parsed(attr) {
		return nil, nil
	}
	spec, diags := evalExtensions(attr)
	if spec == nil && !diags.HasErrors() && len(d.broken) == 0 {
		diags = diags.Append(errorAt(attr.Expr.Range(), fmt.Sprintf("%s could not be evaluated", attr.Name)))
	}
	return spec, diags
}

// checkDestinations refuses sets whose files would land in the same directory tree as
// another set's, or among the partial uploads of data_dir (which would then be served).
func (d *decoder) checkDestinations(cfg *Config, dataDir *hcl.Attribute, dataDirOK bool, decls []*setDecl) {
	for j, b := range decls {
		if !b.destOK {
			continue
		}
		for _, a := range decls[:j] {
			if !a.destOK {
				continue
			}
			switch {
			case a.Destination == b.Destination:
				d.add(errorAt(b.destRange(), fmt.Sprintf("set %q has the same destination as set %q (%s): their files would mix", b.Name, a.Name, b.Destination)))
			case a.Destination.contains(b.Destination):
				d.add(errorAt(b.destRange(), fmt.Sprintf("destination of set %q (%s) is inside that of set %q (%s): their files would mix", b.Name, b.Destination, a.Name, a.Destination)))
			case b.Destination.contains(a.Destination):
				d.add(errorAt(b.destRange(), fmt.Sprintf("destination of set %q (%s) contains that of set %q (%s): their files would mix", b.Name, b.Destination, a.Name, a.Destination)))
			}
		}
		if dataDirOK && (b.Destination == cfg.DataDir || b.Destination.contains(cfg.DataDir) || cfg.DataDir.contains(b.Destination)) {
			at := b.destRange()
			if b.dest == nil && dataDir != nil {
				at = dataDir.Expr.Range()
			}
			d.add(errorAt(at, fmt.Sprintf("destination of set %q (%s) overlaps data_dir (%s): keep partial uploads apart from placed files", b.Name, b.Destination, cfg.DataDir)))
		}
	}
}

// within reports whether path is strictly inside dir, lexically: the config is checked
// before any directory exists.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}
