package sets

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/hcl/v2"
)

// Auth is a set's auth block: its uploads need a token signed with Key (HS256).
type Auth struct {
	Key []byte // the content of secret_file, without its trailing newline
	// PublicFiles lets anyone fetch the set's placed files; uploads still need a token.
	PublicFiles bool
}

// minKeyLen is HS256's own strength: a shorter key is easier to guess than the hash.
const minKeyLen = 32

var authSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "secret_file"},
		{Name: "public_files"},
	},
}

// auth decodes the set's auth blocks (nil when there is none). secret_file is required
// by hand rather than by the schema, so that the error can say what the file is for.
func (d *decoder) auth(blocks hcl.Blocks, name string) *Auth {
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != "auth" {
			continue
		}
		if first != nil {
			at := first.DefRange
			d.add(errorAt(b.DefRange, fmt.Sprintf("duplicate auth block in set %q; first defined at %s:%d,%d", name, at.Filename, at.Start.Line, at.Start.Column)))
			continue
		}
		first = b
	}
	if first == nil {
		return nil
	}
	content, diags := first.Body.Content(authSchema)
	d.add(diags...)
	a := &Auth{}
	if attr := content.Attributes["secret_file"]; attr != nil {
		d.secret(attr, name, &a.Key)
	} else {
		d.add(errorAt(first.DefRange, fmt.Sprintf(`auth block of set %q needs secret_file: the file holding the HS256 key its tokens are signed with, like secret_file = "./secrets/%s.key"`, name, name)))
	}
	d.boolean(content.Attributes["public_files"], &a.PublicFiles)
	return a
}

// secret reads a key file named by attr, resolved like other paths. Only its last
// newline is dropped: editors and `echo` add one, while anything else is the key.
func (d *decoder) secret(attr *hcl.Attribute, set string, dst *[]byte) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	at := attr.Expr.Range()
	if s == "" {
		d.add(errorAt(at, fmt.Sprintf("%s must not be empty", attr.Name)))
		return false
	}
	path := d.path(s)
	key, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		if errors.Is(err, fs.ErrNotExist) {
			d.add(errorAt(at, fmt.Sprintf("%s %s does not exist", attr.Name, path)))
		} else {
			d.add(errorAt(at, fmt.Sprintf("cannot read %s %s: %v", attr.Name, path, err)))
		}
		return false
	}
	if k, ok := bytes.CutSuffix(key, []byte("\n")); ok {
		key = bytes.TrimSuffix(k, []byte("\r")) // written on Windows
	}
	if len(key) == 0 {
		d.add(errorAt(at, fmt.Sprintf("%s %s is empty: write a random key of at least %d bytes into it, like with `openssl rand -hex 32`", attr.Name, path, minKeyLen)))
		return false
	}
	if len(key) < minKeyLen {
		d.add(warningAt(at, fmt.Sprintf("%s %s holds a key of %d bytes: HS256 wants at least %d (256 bits) to keep the tokens of set %q unguessable, like from `openssl rand -hex 32`", attr.Name, path, len(key), minKeyLen, set)))
	}
	*dst = key
	return true
}
