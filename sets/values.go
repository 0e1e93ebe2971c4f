package sets

import (
	"fmt"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Each decoder method below reads one optional attribute into *dst, leaving the default
// when the attribute is absent or null, and reports problems at the attribute's value.
// They return whether *dst now holds a value from the file.

// value evaluates a scalar attribute. Scalars get no variables or functions: presets
// mean nothing there, and "Variables not allowed" is the clearest answer.
func (d *decoder) value(attr *hcl.Attribute) (cty.Value, bool) {
	if attr == nil || !d.parsed(attr) {
		return cty.NilVal, false
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		// `naming = uuid` is a forgotten pair of quotes, not a variable.
		if word := hcl.ExprAsKeyword(attr.Expr); word != "" {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a string in quotes: %s = %q`, attr.Name, attr.Name, word)))
			return cty.NilVal, false
		}
		d.add(diags...)
		return cty.NilVal, false
	}
	val, _ = val.UnmarkDeep()
	if val.IsNull() || !val.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return val, true
}

func (d *decoder) str(attr *hcl.Attribute) (string, bool) {
	val, ok := d.value(attr)
	if !ok {
		return "", false
	}
	if val.Type() != cty.String {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must be a string in quotes", attr.Name)))
		return "", false
	}
	return val.AsString(), true
}

func (d *decoder) listen(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid listen %q: must be host:port with a numeric port, like "127.0.0.1:8080" or ":8080"`, s)))
		return false
	}
	*dst = s
	return true
}

// baseURL reads a URL under which files or endpoints are published. "" is allowed and
// means "this server, at the address the client used".
func (d *decoder) baseURL(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	if s != "" {
		if why := checkURL(s); why != "" {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: %s", attr.Name, s, why)))
			return false
		}
	}
	*dst = s
	return true
}

func checkURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return `must be an absolute http or https URL, like "https://files.example.com/photos/"`
	case u.User != nil:
		return "must not contain a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a query or a fragment: file names are appended to it"
	}
	return ""
}

func trimSlash(s string) string { return strings.TrimRight(s, "/") }

// dir reads a directory, resolved against the config file's directory.
func (d *decoder) dir(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	if s == "" {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must not be empty", attr.Name)))
		return false
	}
	*dst = d.path(s)
	return true
}

func (d *decoder) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.base, p)
}

// size reads "16MiB"-style strings or a whole number of bytes.
func (d *decoder) size(attr *hcl.Attribute, dst *int64) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	var n int64
	switch val.Type() {
	case cty.String:
		var err error
		if n, err = parseSize(val.AsString()); err != nil {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: %v", attr.Name, val.AsString(), err)))
			return false
		}
	case cty.Number:
		bf := val.AsBigFloat()
		i, acc := bf.Int64()
		if !bf.IsInt() || acc != big.Exact {
			// Shown through float64: bf.Text on 1e99999999 takes seconds.
			f, _ := bf.Float64()
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %s: must be a whole number of bytes up to 9223372036854775807, or a string with a unit like \"16MiB\"", attr.Name, strconv.FormatFloat(f, 'g', -1, 64))))
			return false
		}
		n = i
	default:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a size, like "16MiB", or a number of bytes`, attr.Name)))
		return false
	}
	if n <= 0 {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must be more than 0 bytes", attr.Name)))
		return false
	}
	*dst = n
	return true
}

func (d *decoder) duration(attr *hcl.Attribute, dst *time.Duration) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	if val.Type() != cty.String {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a duration in quotes, like "24h", "90m" or "30s"`, attr.Name)))
		return false
	}
	s := val.AsString()
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid %s %q: write a duration like "24h", "90m" or "30s"`, attr.Name, s)))
		return false
	case t <= 0:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: must be more than 0", attr.Name, s)))
		return false
	}
	*dst = t
	return true
}

func (d *decoder) naming(attr *hcl.Attribute, dst *Naming) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	switch n := Naming(s); n {
	case NamingOriginal, NamingUUID:
		*dst = n
		return true
	}
	d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid naming %q: must be "original" or "uuid"`, s)))
	return false
}
