package sets

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// S3Config is the s3 block: how the server reaches S3 for the locations on it.
// Credentials are not in the config: they come from the AWS SDK's default chain
// (AWS_ACCESS_KEY_ID, ...).
type S3Config struct {
	// Endpoint is an S3-compatible server's base URL, http or https, without a path
	// or a trailing "/"; "" is AWS.
	Endpoint string
	// Region is as written; "" leaves it to the SDK's default chain (AWS_REGION, the
	// profile...): no region is assumed.
	Region string
	// PathStyle puts the bucket in the URL's path (http://host/bucket/key) rather than
	// in its host name, as most S3-compatible servers need; default false.
	PathStyle bool
	At        hcl.Range // the block, for problems found at start
}

// RedisConfig is the redis block: where several instances on S3 share their locks
// and coordinate.
type RedisConfig struct {
	URL string    // redis://, rediss:// or unix://, as written
	At  hcl.Range // the block
}

var s3Schema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "endpoint"}, {Name: "region"}, {Name: "path_style"},
}}

var redisSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}}}

// single returns the first of blocks and reports the others, each pointing at it.
func (d *decoder) single(blocks hcl.Blocks) *hcl.Block {
	for _, b := range blocks[min(1, len(blocks)):] {
		d.add(errorAt(b.DefRange, fmt.Sprintf("duplicate %s block; the first is at %s", b.Type, at(blocks[0].DefRange))))
	}
	if len(blocks) == 0 {
		return nil
	}
	return blocks[0]
}

func (d *decoder) s3Block(blocks hcl.Blocks) *S3Config {
	b := d.single(blocks)
	if b == nil {
		return nil
	}
	content, diags := b.Body.Content(s3Schema)
	d.add(diags...)
	attrs := content.Attributes
	c := &S3Config{At: b.DefRange}
	d.endpoint(attrs["endpoint"], &c.Endpoint)
	d.region(attrs["region"], &c.Region)
	d.boolean(attrs["path_style"], &c.PathStyle)
	return c
}

func (d *decoder) endpoint(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	u, err := url.Parse(s)
	var why string
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		why = `must be an absolute http or https URL, like "http://127.0.0.1:7070"; leave it out for AWS`
	case u.User != nil:
		why = "must not contain a user name or password: credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID, ...)"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		why = "must not have a query or a fragment"
	case u.Path != "" && u.Path != "/":
		why = `must have no path beyond "/": the S3 client adds the bucket and the key`
	}
	if why != "" {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid endpoint %q: %s", s, why)))
		return false
	}
	*dst = strings.TrimSuffix(s, "/")
	return true
}

// regionName is loose on purpose: S3-compatible servers name regions as they like
// ("garage", "auto"); what it refuses is never a region.
var regionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (d *decoder) region(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	switch {
	case s == "":
		d.add(errorAt(attr.Expr.Range(), "region must not be empty: leave it out to take the region from the AWS SDK's default chain (AWS_REGION, ...)"))
		return false
	case !regionName.MatchString(s):
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid region %q: write a region name, like "us-east-1"`, s)))
		return false
	}
	*dst = s
	return true
}

func (d *decoder) redisBlock(blocks hcl.Blocks) *RedisConfig {
	b := d.single(blocks)
	if b == nil {
		return nil
	}
	content, diags := b.Body.Content(redisSchema)
	d.add(diags...)
	c := &RedisConfig{At: b.DefRange}
	d.redisURL(content.Attributes["url"], &c.URL)
	return c
}

// redisDB is the database part of a redis:// URL's path.
var redisDB = regexp.MustCompile(`^/?([0-9]+)?$`)

func (d *decoder) redisURL(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the rest repeats the URL, and with it any password
		}
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid url: %v; write it like "redis://127.0.0.1:6379/0"`, err)))
		return false
	}
	var why string
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix", u.Opaque != "":
		why = `must be a redis://, rediss:// or unix:// URL, like "redis://127.0.0.1:6379/0"`
	case u.Fragment != "" || strings.Contains(s, "#"):
		why = "must not have a fragment"
	case u.Scheme == "unix" && u.Path == "":
		why = `names no socket: write it like "unix:///run/redis/redis.sock"`
	case u.Scheme != "unix" && u.Hostname() == "":
		why = `names no host: write it like "redis://127.0.0.1:6379/0"`
	case u.Scheme != "unix" && !redisDB.MatchString(u.Path):
		why = fmt.Sprintf(`the database %q is not a number: write it like "redis://127.0.0.1:6379/0"`, strings.TrimPrefix(u.Path, "/"))
	}
	if why != "" {
		// Redacted: the file holds the password, but logs of a failed reload should not.
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid url %q: %s", u.Redacted(), why)))
		return false
	}
	*dst = s
	return true
}

// checkStorage is the semantic pass over where things are kept: the s3 and redis
// blocks against the locations that need them, and data_dir against destinations.
// defaultDest is the written uploads_default_dest, if it holds a good location.
func (d *decoder) checkStorage(cfg *Config, dataDir, defaultDest *hcl.Attribute, dataDirOK bool, decls []*setDecl) {
	type use struct {
		what string
		loc  Location
		at   hcl.Range
	}
	var onS3 []use // written s3:// locations
	if dataDir != nil && dataDirOK && cfg.DataDir.IsS3() {
		onS3 = append(onS3, use{"data_dir", cfg.DataDir, dataDir.Expr.Range()})
	}
	if defaultDest != nil && cfg.DefaultDest.IsS3() {
		onS3 = append(onS3, use{"uploads_default_dest", cfg.DefaultDest, defaultDest.Expr.Range()})
	}
	for _, s := range decls {
		if s.own && s.destOK && s.Destination.IsS3() {
			onS3 = append(onS3, use{fmt.Sprintf("destination of set %q", s.Name), s.Destination, *s.dest})
		}
	}
	switch {
	case !d.s3Declared:
		for _, u := range onS3 {
			d.add(errorAt(u.at, fmt.Sprintf(`%s is on S3 (%q) but there is no s3 block: add one, like s3 { region = "us-east-1" }`, u.what, u.loc)))
		}
	case cfg.S3 != nil && !d.s3Written:
		d.add(warningAt(cfg.S3.At, "s3 block is unused: no data_dir or destination is on S3 (s3://bucket/prefix/)"))
	}
	if !dataDirOK {
		return // each set would be compared with a default that is not what was meant
	}
	// Finished uploads are moved by S3's own copy, from data_dir to the destination:
	// both must be in S3, as both must be on disk for a rename.
	for _, s := range decls {
		if !s.destOK || s.Destination.IsS3() == cfg.DataDir.IsS3() {
			continue
		}
		switch {
		case s.Destination.IsS3():
			d.add(errorAt(s.destRange(), fmt.Sprintf("destination of set %q is on S3 (%s) but data_dir is local (%s): finished uploads are moved by a server-side copy inside S3, never downloaded and uploaded again, so data_dir must be on S3 too", s.Name, s.Destination, cfg.DataDir)))
		case s.dest == nil:
			d.add(errorAt(s.destRange(), fmt.Sprintf(`set %q has no destination, and the default one (%s) is local, but data_dir is on S3 (%s): finished uploads are moved by a server-side copy inside S3, so give the set an s3:// destination, or write uploads_default_dest = "s3://bucket/prefix/"`, s.Name, s.Destination, cfg.DataDir)))
		default:
			d.add(errorAt(s.destRange(), fmt.Sprintf("destination of set %q is local (%s) but data_dir is on S3 (%s): finished uploads are moved by a server-side copy inside S3, never downloaded and uploaded again, so every destination must be on S3 too", s.Name, s.Destination, cfg.DataDir)))
		}
	}
	switch {
	case cfg.DataDir.IsS3() && !d.redisDeclared:
		d.add(warningAt(cfg.DataDirAt, "data_dir is on S3 without a redis block: run a single instance (several instances need redis for their locks)"))
	case !cfg.DataDir.IsS3() && cfg.Redis != nil:
		d.add(warningAt(cfg.Redis.At, "redis block with a local data_dir: several instances on local paths must not share data_dir, so give each its own (redis coordinates instances on S3)"))
	}
}

// notOnS3 warns about a local-only attribute, written, of something stored on S3.
func (d *decoder) notOnS3(attr *hcl.Attribute, of, where string) {
	if attr != nil {
		d.add(warningAt(attr.Expr.Range(), fmt.Sprintf("%s%s does not apply to S3 objects (%s): leave it out", attr.Name, of, where)))
	}
}
