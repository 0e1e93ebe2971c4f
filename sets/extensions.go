package sets

import (
	"regexp"
	"slices"
	"strings"
)

// Extensions is the set of allowed file extensions (lower-case, no dot). The zero value
// allows nothing.
type Extensions struct {
	any bool
	// names holds the allowed extensions, or the excluded ones when any is set.
	names map[string]struct{}
}

// AllowOnly returns Extensions allowing exactly the given extensions. It exists so other
// packages can build a Set by hand in tests; names are normalised like config values.
func AllowOnly(names ...string) Extensions {
	return Extensions{names: nameSet(names)}
}

// AllowAnyExcept returns Extensions allowing every extension (and none) but the given ones.
func AllowAnyExcept(names ...string) Extensions {
	return Extensions{any: true, names: nameSet(names)}
}

func nameSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[normExt(n)] = struct{}{}
	}
	return m
}

// Allows reports whether a file with extension ext (with or without its dot, any case)
// is accepted. A file without an extension is accepted only by an "any" set: a list of
// extensions is a promise about what the files are.
func (e Extensions) Allows(ext string) bool {
	ext = normExt(ext)
	_, listed := e.names[ext]
	if e.any {
		return !listed
	}
	return ext != "" && listed
}

// Any reports whether the set accepts any extension (perhaps with exclusions).
func (e Extensions) Any() bool { return e.any }

// List returns, sorted, the allowed extensions, or when Any the excluded ones.
func (e Extensions) List() []string {
	list := make([]string, 0, len(e.names))
	for n := range e.names {
		list = append(list, n)
	}
	slices.Sort(list)
	return list
}

// String renders the set for people: "jpg, png", "any" or "any except dll, exe".
func (e Extensions) String() string {
	list := strings.Join(e.List(), ", ")
	switch {
	case e.any && list == "":
		return "any"
	case e.any:
		return "any except " + list
	case list == "":
		return "none"
	}
	return list
}

var extSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9_+-]*$`)

// normExt lower-cases ext and drops one leading dot, so ".JPG" and "jpg" compare equal.
func normExt(ext string) string {
	return strings.ToLower(strings.TrimPrefix(ext, "."))
}

// validExt reports whether a normalised extension can be written in a config. The
// pattern keeps markers, paths and wildcards out of what operators think is a plain name.
func validExt(ext string) bool { return extSyntax.MatchString(ext) }
