package sets

import (
	"errors"
	"testing"
)

func photos() *Set {
	return &Set{Name: "photos", Extensions: AllowOnly(presets["images"]...), MaxSize: 16 << 20}
}

func TestAdmit(t *testing.T) {
	attachments := &Set{Name: "attachments", Extensions: AllowAnyExcept("exe", "dll", "so"), MaxSize: 1 << 30}
	tests := map[string]struct {
		set  *Set
		name string
		size int64
		rule Rule   // "" when admitted
		want error  // the sentinel
		msg  string // exact message
	}{
		"admitted":                     {set: photos(), name: "cat.png", size: 1000},
		"upper-case extension":         {set: photos(), name: "CAT.JPG", size: 1000},
		"exactly max_size":             {set: photos(), name: "cat.png", size: 16 << 20},
		"unknown size is not judged":   {set: photos(), name: "cat.png", size: -1},
		"path is only a hint":          {set: photos(), name: "../../etc/cat.png", size: 1},
		"no extension in an any set":   {set: attachments, name: "README", size: 1},
		"hand-built set without limit": {set: &Set{Name: "x", Extensions: AllowAnyExcept()}, name: "a", size: 1 << 62},
		"no name": {set: photos(), name: "", size: 1, rule: RuleName, want: ErrNoName,
			msg: `set "photos" needs a file name: send it as "filename" (or "name") in Upload-Metadata`},
		"nothing left of the name": {set: photos(), name: " ../.. ", size: 1, rule: RuleName, want: ErrNoName,
			msg: `set "photos" needs a file name: send it as "filename" (or "name") in Upload-Metadata`},
		"extension not allowed": {set: photos(), name: "setup.exe", size: 1, rule: RuleExtension, want: ErrExtension,
			msg: `set "photos" does not accept ".exe" files (allowed: bmp, gif, jpe, jpeg, jpg, png, svg, webp)`},
		"last extension counts": {set: photos(), name: "x.png.php", size: 1, rule: RuleExtension, want: ErrExtension,
			msg: `set "photos" does not accept ".php" files (allowed: bmp, gif, jpe, jpeg, jpg, png, svg, webp)`},
		"trailing dot does not hide it": {set: photos(), name: "x.php.", size: 1, rule: RuleExtension, want: ErrExtension,
			msg: `set "photos" does not accept ".php" files (allowed: bmp, gif, jpe, jpeg, jpg, png, svg, webp)`},
		"no extension": {set: photos(), name: "png", size: 1, rule: RuleExtension, want: ErrExtension,
			msg: `set "photos" does not accept files without an extension (allowed: bmp, gif, jpe, jpeg, jpg, png, svg, webp)`},
		"a dotfile has no extension": {set: photos(), name: ".png", size: 1, rule: RuleExtension, want: ErrExtension,
			msg: `set "photos" does not accept files without an extension (allowed: bmp, gif, jpe, jpeg, jpg, png, svg, webp)`},
		"excluded from an any set": {set: attachments, name: "Setup.EXE", size: 1, rule: RuleExtension, want: ErrExtension,
			msg: `set "attachments" does not accept ".exe" files (allowed: any except dll, exe, so)`},
		"too large": {set: photos(), name: "cat.png", size: 20 << 20, rule: RuleSize, want: ErrTooLarge,
			msg: `set "photos" accepts files up to 16 MiB; this one is 20 MiB (20971520 bytes)`},
		"one byte too large": {set: photos(), name: "cat.png", size: 16<<20 + 1, rule: RuleSize, want: ErrTooLarge,
			msg: `set "photos" accepts files up to 16 MiB; this one is 16 MiB (16777217 bytes)`},
		"extension before size": {set: photos(), name: "x.exe", size: 1 << 40, rule: RuleExtension, want: ErrExtension,
			msg: `set "photos" does not accept ".exe" files (allowed: bmp, gif, jpe, jpeg, jpg, png, svg, webp)`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.set.Admit(tt.name, tt.size)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("Admit(%q, %d) = %v, want nil", tt.name, tt.size, err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Admit(%q, %d) = %v, want a *PolicyError", tt.name, tt.size, err)
			}
			if pe.Rule != tt.rule || pe.Set != tt.set.Name {
				t.Errorf("rule %q set %q, want %q %q", pe.Rule, pe.Set, tt.rule, tt.set.Name)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(err, %v) = false", tt.want)
			}
			if err.Error() != tt.msg {
				t.Errorf("message\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}

func TestContentMismatch(t *testing.T) {
	err := photos().ContentMismatch("x.png", "png", "text/html")
	if !errors.Is(err, ErrContent) {
		t.Error("not ErrContent")
	}
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Rule != RuleContent || pe.Set != "photos" {
		t.Errorf("got %#v", err)
	}
	if want := `set "photos" rejected "x.png": its content is text/html, not a .png file`; err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}

func TestPolicyErrorsAreDistinct(t *testing.T) {
	for rule := range ruleErrs {
		err := &PolicyError{Set: "s", Rule: rule, Msg: "m"}
		for other, o := range ruleErrs {
			if errors.Is(err, o) != (other == rule) {
				t.Errorf("rule %s: errors.Is(err, %v) = %v", rule, o, !(other == rule))
			}
		}
	}
}
