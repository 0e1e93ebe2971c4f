package sets

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// presets are Flask-Uploads' extension groups, so operators coming from there find the
// names they know.
var presets = func() map[string][]string {
	p := map[string][]string{
		"text":        {"txt"},
		"images":      {"jpg", "jpe", "jpeg", "png", "gif", "svg", "bmp", "webp"},
		"audio":       {"wav", "mp3", "aac", "ogg", "oga", "flac"},
		"documents":   {"rtf", "odf", "ods", "gnumeric", "abw", "doc", "docx", "xls", "xlsx"},
		"data":        {"csv", "ini", "json", "plist", "xml", "yaml", "yml"},
		"scripts":     {"js", "php", "pl", "py", "rb", "sh"},
		"archives":    {"gz", "bz2", "zip", "tar", "tgz", "txz", "7z"},
		"executables": {"so", "exe", "dll"},
	}
	p["defaults"] = slices.Concat(p["text"], p["documents"], p["images"], p["data"])
	return p
}()

// presetNames is the list shown when an operator names a preset that does not exist;
// "all" is a preset to them even though it is built differently.
var presetNames = func() string {
	names := append(slices.Collect(maps.Keys(presets)), "all")
	slices.Sort(names)
	return strings.Join(names, ", ")
}()

// anyExcept is what `all` and all_except(...) evaluate to. It lives inside cty as a
// capsule, not as a marker string, so no string an operator writes can forge it and
// concat() carries it through untouched.
type anyExcept struct{ except map[string]struct{} }

var anyExceptType = cty.Capsule("all_except", reflect.TypeFor[anyExcept]())

func anyExceptVal(except map[string]struct{}) cty.Value {
	return cty.TupleVal([]cty.Value{cty.CapsuleVal(anyExceptType, &anyExcept{except: except})})
}

var allExceptFunc = function.New(&function.Spec{
	Description: "Any extension except the given ones.",
	Params: []function.Parameter{{
		Name: "extensions",
		Type: cty.List(cty.String),
	}},
	Type: function.StaticReturnType(cty.Tuple([]cty.Type{anyExceptType})),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		except := map[string]struct{}{}
		for _, v := range args[0].AsValueSlice() {
			if v.IsNull() {
				return cty.NilVal, function.NewArgErrorf(0, "an extension is null")
			}
			ext := normExt(v.AsString())
			if !validExt(ext) {
				return cty.NilVal, function.NewArgErrorf(0, "%s", badExtMsg(v.AsString()))
			}
			except[ext] = struct{}{}
		}
		return anyExceptVal(except), nil
	},
})

// extContext is the whole vocabulary of extensions, allow and deny: the presets as
// variables plus concat and all_except.
var extContext = func() *hcl.EvalContext {
	vars := map[string]cty.Value{"all": anyExceptVal(map[string]struct{}{})}
	for name, exts := range presets {
		vals := make([]cty.Value, len(exts))
		for i, e := range exts {
			vals[i] = cty.StringVal(e)
		}
		vars[name] = cty.ListVal(vals)
	}
	return &hcl.EvalContext{
		Variables: vars,
		Functions: map[string]function.Function{
			"concat":     stdlib.ConcatFunc,
			"all_except": allExceptFunc,
		},
	}
}()

func badExtMsg(ext string) string {
	return fmt.Sprintf(`invalid extension %q: write it like "jpg" (letters, digits, "_", "+", "-")`, ext)
}

// extSpec is a decoded extensions/allow/deny value: a union of plain extensions and
// "any except" groups. Union of two groups excludes only what both exclude.
type extSpec struct {
	names  map[string]hcl.Range // plain extensions, with where each was written
	any    bool
	except map[string]struct{} // meaningful only when any
}

// Allows reports whether ext is in the union.
func (x *extSpec) allows(ext string) bool {
	if _, ok := x.names[ext]; ok {
		return true
	}
	if x.any {
		_, ok := x.except[ext]
		return !ok
	}
	return false
}

func (x *extSpec) addAny(except map[string]struct{}) {
	if !x.any {
		x.any = true
		x.except = maps.Clone(except)
		return
	}
	maps.DeleteFunc(x.except, func(e string, _ struct{}) bool {
		_, ok := except[e]
		return !ok
	})
}

// evalExtensions evaluates an extensions, allow or deny expression. Errors point at
// the offending element when it was written as a literal list. A nil spec without
// errors means the value is unknown, which only an expression the parser had to
// salvage can be.
func evalExtensions(attr *hcl.Attribute) (*extSpec, hcl.Diagnostics) {
	val, diags := attr.Expr.Value(extContext)
	diags = rewordUnknownPreset(diags)
	rng := attr.Expr.Range()
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return nil, diags
	}
	spec := &extSpec{names: map[string]hcl.Range{}}
	val, _ = val.UnmarkDeep()
	if val.IsNull() || !val.Type().IsListType() && !val.Type().IsTupleType() && !val.Type().IsSetType() {
		msg := fmt.Sprintf(`%s must be a list of extensions or a preset, like ["jpg", "png"] or images`, attr.Name)
		if !val.IsNull() && val.Type() == cty.String {
			if s := val.AsString(); s == "all" || presets[s] != nil {
				msg = fmt.Sprintf("%s must be a list or a preset: write %s without quotes", attr.Name, s)
			} else {
				msg = fmt.Sprintf(`%s must be a list, like [%q]`, attr.Name, s)
			}
		}
		return nil, diags.Append(errorAt(rng, msg))
	}
	elems := elementRanges(attr.Expr, val.LengthInt())
	for i, v := range val.AsValueSlice() {
		at := rng
		if elems != nil {
			at = elems[i]
		}
		switch {
		case v.IsNull():
			diags = diags.Append(errorAt(at, fmt.Sprintf("%s must not contain null", attr.Name)))
		case v.Type() == anyExceptType:
			spec.addAny(v.EncapsulatedValue().(*anyExcept).except)
		case v.Type() == cty.String:
			ext := normExt(v.AsString())
			if !validExt(ext) {
				diags = diags.Append(errorAt(at, badExtMsg(v.AsString())))
				continue
			}
			if _, dup := spec.names[ext]; !dup {
				spec.names[ext] = at
			}
		case v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType():
			diags = diags.Append(errorAt(at, fmt.Sprintf("%s must be a flat list of extensions; join presets and lists with concat(...), not by nesting them", attr.Name)))
		default:
			diags = diags.Append(errorAt(at, fmt.Sprintf(`%s must list extensions as strings in quotes, like "jpg"`, attr.Name)))
		}
	}
	return spec, diags
}

// elementRanges returns each element's range when expr is a literal list of n elements.
func elementRanges(expr hcl.Expression, n int) []hcl.Range {
	exprs, diags := hcl.ExprList(expr)
	if diags.HasErrors() || len(exprs) != n {
		return nil
	}
	rs := make([]hcl.Range, n)
	for i, e := range exprs {
		rs[i] = e.Range()
	}
	return rs
}

// rewordUnknownPreset turns HCL's "Unknown variable" into words about presets, keeping
// its "Did you mean" suggestion.
func rewordUnknownPreset(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if d.Summary != "Unknown variable" {
			continue
		}
		name, suggestion, _ := strings.Cut(strings.TrimPrefix(d.Detail, "There is no variable named "), ".")
		d.Summary = "unknown preset " + name
		d.Detail = "presets are: " + presetNames + "." + suggestion
	}
	return diags
}
