package sets

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// onS3 completes a config whose data_dir is on S3 with what it needs, so that a test
// sees only the diagnostics of what it is about. It begins on a new line.
const onS3 = `
s3 { region = "us-east-1" }
redis { url = "redis://127.0.0.1:6379/0" }`

// usesS3 completes a config that tests the s3 block with what needs it, from line 2.
const usesS3 = `
data_dir = "s3://bkt/partial/"
redis { url = "redis://127.0.0.1:6379/0" }
set "a" { destination = "s3://bkt/a/" }`

// dataOnS3 completes one that tests the redis block, from line 2.
const dataOnS3 = `
data_dir = "s3://bkt/partial/"
s3 {}
set "a" { destination = "s3://bkt/a/" }`

// warnedWith checks that src loads, with exactly the diagnostics want.
func warnedWith(t *testing.T, src, want string) *Config {
	t.Helper()
	cfg, diags := Parse([]byte(src), "c.hcl")
	var out bytes.Buffer
	WriteDiagnostics(&out, diags)
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if cfg == nil {
		t.Fatal("want a config")
	}
	return cfg
}

func TestParseS3(t *testing.T) {
	cfg := warnedWith(t, `data_dir = "s3://bucket/partial"
uploads_default_dest = "s3://bucket/files"
s3 {
  endpoint   = "http://127.0.0.1:7070/"
  path_style = true
}
redis { url = "rediss://u:p@redis.example.com:6380/2" }
set "photos" { destination = "s3://media.example.com/photos/" }
set "docs" {}
set "root" { destination = "S3://whole-bucket/" }
`, "")
	want := map[string]Location{
		"data_dir": {Bucket: "bucket", Prefix: "partial/"},
		"photos":   {Bucket: "media.example.com", Prefix: "photos/"},
		"docs":     {Bucket: "bucket", Prefix: "files/docs/"},
		"root":     {Bucket: "whole-bucket"},
	}
	got := map[string]Location{"data_dir": cfg.DataDir}
	for _, s := range cfg.Sets {
		got[s.Name] = s.Destination
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got[name], w)
		}
	}
	if s := cfg.Sets[2].Destination.String(); s != "s3://whole-bucket/" {
		t.Errorf("String() = %q", s)
	}
	if s3 := cfg.S3; s3 == nil || s3.Endpoint != "http://127.0.0.1:7070" || s3.Region != "" || !s3.PathStyle || s3.At.Start.Line != 3 {
		t.Errorf("S3 = %+v; want the endpoint without its slash, no region assumed, path-style, at line 3", s3)
	}
	if r := cfg.Redis; r == nil || r.URL != "rediss://u:p@redis.example.com:6380/2" || r.At.Start.Line != 7 {
		t.Errorf("Redis = %+v", r)
	}

	cfg = warnedWith(t, `set "a" {}`, "")
	if cfg.S3 != nil || cfg.Redis != nil || cfg.DataDir.IsS3() || cfg.Sets[0].Destination.IsS3() {
		t.Errorf("a local config: S3 %v, Redis %v, data_dir %v", cfg.S3, cfg.Redis, cfg.DataDir)
	}
}

// Local paths stay as they were, colons and all, when they cannot be a URL.
func TestParseLocalPaths(t *testing.T) {
	for src, want := range map[string]string{
		"./ftp:files": "/etc/uploadsets/ftp:files",
		"c:":          "/etc/uploadsets/c:", // one letter: a drive, or a folder
		"a/s3://b":    "/etc/uploadsets/a/s3:/b",
		"/srv/x/":     "/srv/x",
	} {
		cfg, diags := Parse([]byte(`data_dir = "`+src+`"`+aSet), "/etc/uploadsets/config.hcl")
		if len(diags) > 0 {
			t.Errorf("%s: %v", src, diags)
			continue
		}
		if cfg.DataDir != (Location{Path: want}) {
			t.Errorf("%s: data_dir = %+v, want %s", src, cfg.DataDir, want)
		}
	}
}

func TestParseS3Errors(t *testing.T) {
	const copyWhy = "finished uploads are moved by a server-side copy inside S3, never downloaded and uploaded again"
	tests := map[string]struct {
		src  string
		want string
	}{
		"no s3 block": {`data_dir = "s3://bkt/partial/"
set "a" { destination = "s3://bkt/a" }
redis { url = "redis://127.0.0.1:6379/0" }`,
			`c.hcl:1,12: data_dir is on S3 ("s3://bkt/partial/") but there is no s3 block: add one, like s3 { region = "us-east-1" }` + "\n" +
				`c.hcl:2,25: destination of set "a" is on S3 ("s3://bkt/a/") but there is no s3 block: add one, like s3 { region = "us-east-1" }` + "\n"},
		"unknown scheme": {`set "photos" { destination = "gs://x/photos" }`,
			`c.hcl:1,30: unsupported scheme "gs" in destination of set "photos": use a local path or s3://bucket/prefix/` + "\n"},
		"http": {`data_dir = "http://x/"` + aSet,
			`c.hcl:1,12: unsupported scheme "http" in data_dir: use a local path or s3://bucket/prefix/` + "\n"},
		"file": {`uploads_default_dest = "file:///srv/u"` + aSet,
			`c.hcl:1,24: unsupported scheme "file" in uploads_default_dest: use a local path or s3://bucket/prefix/` + "\n"},
		"a scheme without slashes": {`data_dir = "ftp:"` + aSet,
			`c.hcl:1,12: unsupported scheme "ftp" in data_dir: use a local path or s3://bucket/prefix/ (a local folder whose name has a colon is written "./ftp:")` + "\n"},
		"s3 without slashes": {`data_dir = "s3:bkt/partial"` + aSet,
			`c.hcl:1,12: invalid S3 location "s3:bkt/partial" in data_dir: write s3://bucket/prefix/` + "\n"},
		"empty bucket": {`data_dir = "s3:///x"` + onS3 + aSet,
			`c.hcl:1,12: data_dir (s3:///x) names no bucket: write s3://bucket/prefix/` + "\n"},
		"bad bucket": {`data_dir = "s3://my_bucket/x"` + onS3 + aSet,
			`c.hcl:1,12: invalid S3 bucket "my_bucket" in data_dir: a bucket name may hold only lower-case letters, digits, dots and hyphens, not "_"` + "\n"},
		"dot-dot": {`set "a" { destination = "s3://bkt/a/../b/" }`,
			`c.hcl:1,25: destination of set "a" (s3://bkt/a/../b/) has a ".." segment in its prefix: S3 keys are literal, so it would not mean what it says; write the prefix without "." or ".."` + "\n"},
		"dot": {`set "a" { destination = "s3://bkt/./b/" }`,
			`c.hcl:1,25: destination of set "a" (s3://bkt/./b/) has a "." segment in its prefix: S3 keys are literal, so it would not mean what it says; write the prefix without "." or ".."` + "\n"},
		"double slash": {`set "a" { destination = "s3://bkt/a//b/" }`,
			`c.hcl:1,25: destination of set "a" (s3://bkt/a//b/) has an empty segment ("//") in its prefix: S3 would keep it in every key; write single slashes` + "\n"},
		"slash after the bucket": {`set "a" { destination = "s3://bkt//b/" }`,
			`c.hcl:1,25: destination of set "a" (s3://bkt//b/) has an empty segment ("//") in its prefix: S3 would keep it in every key; write single slashes` + "\n"},
		"query": {`set "a" { destination = "s3://bkt/a/?versionId=1" }`,
			`c.hcl:1,25: destination of set "a" (s3://bkt/a/?versionId=1) has a query: an S3 location is s3://bucket/prefix/, without "?" or "#"` + "\n"},
		"fragment": {`set "a" { destination = "s3://bkt/a#b" }`,
			`c.hcl:1,25: destination of set "a" (s3://bkt/a#b) has a fragment: an S3 location is s3://bucket/prefix/, without "?" or "#"` + "\n"},
		"empty destination": {`set "a" { destination = "" }`, "c.hcl:1,25: destination must not be empty\n"},

		"local destination, data on S3": {`data_dir = "s3://bkt/partial/"` + onS3 + `
set "a" { destination = "/srv/a" }`,
			`c.hcl:4,25: destination of set "a" is local (/srv/a) but data_dir is on S3 (s3://bkt/partial/): ` + copyWhy + ", so every destination must be on S3 too\n"},
		"local default destination, data on S3": {`data_dir = "s3://bkt/partial/"` + onS3 + `
set "a" {}`,
			`c.hcl:4,5: set "a" has no destination, and the default one (/etc/x/uploads/a) is local, but data_dir is on S3 (s3://bkt/partial/): finished uploads are moved by a server-side copy inside S3, so give the set an s3:// destination, or write uploads_default_dest = "s3://bucket/prefix/"` + "\n"},
		"written local default, data on S3": {`data_dir = "s3://bkt/partial/"
uploads_default_dest = "/srv/u"` + onS3 + `
set "a" {}`,
			`c.hcl:2,24: destination of set "a" is local (/srv/u/a) but data_dir is on S3 (s3://bkt/partial/): ` + copyWhy + ", so every destination must be on S3 too\n"},
		"S3 destination, local data": {`s3 { region = "us-east-1" }
set "a" { destination = "s3://bkt/a/" }`,
			`c.hcl:2,25: destination of set "a" is on S3 (s3://bkt/a/) but data_dir is local (/etc/x/data): ` + copyWhy + ", so data_dir must be on S3 too\n"},
		"S3 default destination, local data": {`s3 { region = "us-east-1" }
uploads_default_dest = "s3://bkt/files/"
set "a" {}`,
			`c.hcl:2,24: destination of set "a" is on S3 (s3://bkt/files/a/) but data_dir is local (/etc/x/data): ` + copyWhy + ", so data_dir must be on S3 too\n"},

		"same prefix": {`data_dir = "s3://bkt/partial/"` + onS3 + `
set "a" { destination = "s3://bkt/files/" }
set "b" { destination = "s3://bkt/files" }`,
			`c.hcl:5,25: set "b" has the same destination as set "a" (s3://bkt/files/): their files would mix` + "\n"},
		"prefix inside another": {`data_dir = "s3://bkt/partial/"` + onS3 + `
set "a" { destination = "s3://bkt/files/" }
set "b" { destination = "s3://bkt/files/b/" }
set "c" { destination = "s3://bkt/filesc/" }
set "d" { destination = "s3://other/files/" }`,
			`c.hcl:5,25: destination of set "b" (s3://bkt/files/b/) is inside that of set "a" (s3://bkt/files/): their files would mix` + "\n"},
		"bucket root holds data_dir": {`data_dir = "s3://bkt/partial/"` + onS3 + `
set "a" { destination = "s3://bkt" }`,
			`c.hcl:4,25: destination of set "a" (s3://bkt/) overlaps data_dir (s3://bkt/partial/): keep partial uploads apart from placed files` + "\n"},

		"endpoint not a URL": {`s3 { endpoint = "127.0.0.1:7070" }` + usesS3,
			`c.hcl:1,17: invalid endpoint "127.0.0.1:7070": must be an absolute http or https URL, like "http://127.0.0.1:7070"; leave it out for AWS` + "\n"},
		"endpoint scheme": {`s3 { endpoint = "s3://minio:9000" }` + usesS3,
			`c.hcl:1,17: invalid endpoint "s3://minio:9000": must be an absolute http or https URL, like "http://127.0.0.1:7070"; leave it out for AWS` + "\n"},
		"endpoint path": {`s3 { endpoint = "https://minio.example.com/bucket" }` + usesS3,
			`c.hcl:1,17: invalid endpoint "https://minio.example.com/bucket": must have no path beyond "/": the S3 client adds the bucket and the key` + "\n"},
		"endpoint password": {`s3 { endpoint = "https://k:s@minio.example.com" }` + usesS3,
			`c.hcl:1,17: invalid endpoint "https://k:s@minio.example.com": must not contain a user name or password: credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID, ...)` + "\n"},
		"endpoint query": {`s3 { endpoint = "https://minio.example.com/?x=1" }` + usesS3,
			`c.hcl:1,17: invalid endpoint "https://minio.example.com/?x=1": must not have a query or a fragment` + "\n"},
		"empty region": {`s3 { region = "" }` + usesS3,
			"c.hcl:1,15: region must not be empty: leave it out to take the region from the AWS SDK's default chain (AWS_REGION, ...)\n"},
		"bad region": {`s3 { region = "us east 1" }` + usesS3,
			`c.hcl:1,15: invalid region "us east 1": write a region name, like "us-east-1"` + "\n"},
		"path_style in quotes": {`s3 { path_style = "true" }` + usesS3,
			"c.hcl:1,19: path_style must be true or false, without quotes\n"},
		"unknown s3 attribute": {`s3 { bucket = "x" }` + usesS3,
			"c.hcl:1,6: Unsupported argument; An argument named \"bucket\" is not expected here.\n"},
		"two s3 blocks": {"s3 {}\ns3 {}" + usesS3,
			"c.hcl:2,1: duplicate s3 block; the first is at c.hcl:1,1\n"},
		"s3 with a label": {`s3 "aws" {}` + usesS3,
			"c.hcl:1,4: Extraneous label for s3; No labels are expected for s3 blocks.\n"},

		"redis without url": {`redis {}` + dataOnS3,
			"c.hcl:1,7: Missing required argument; The argument \"url\" is required, but no definition was found.\n"},
		"redis scheme": {`redis { url = "http://127.0.0.1:6379" }` + dataOnS3,
			`c.hcl:1,15: invalid url "http://127.0.0.1:6379": must be a redis://, rediss:// or unix:// URL, like "redis://127.0.0.1:6379/0"` + "\n"},
		"redis without scheme": {`redis { url = "127.0.0.1:6379" }` + dataOnS3,
			`c.hcl:1,15: invalid url: first path segment in URL cannot contain colon; write it like "redis://127.0.0.1:6379/0"` + "\n"},
		"redis bad port, password kept out": {`redis { url = "redis://:s3cret@h:port/0" }` + dataOnS3,
			`c.hcl:1,15: invalid url: invalid port ":port" after host; write it like "redis://127.0.0.1:6379/0"` + "\n"},
		"redis without host": {`redis { url = "redis:///0" }` + dataOnS3,
			`c.hcl:1,15: invalid url "redis:///0": names no host: write it like "redis://127.0.0.1:6379/0"` + "\n"},
		"redis database": {`redis { url = "redis://:s3cret@127.0.0.1:6379/zero" }` + dataOnS3,
			`c.hcl:1,15: invalid url "redis://:xxxxx@127.0.0.1:6379/zero": the database "zero" is not a number: write it like "redis://127.0.0.1:6379/0"` + "\n"},
		"unix without socket": {`redis { url = "unix://" }` + dataOnS3,
			`c.hcl:1,15: invalid url "unix:": names no socket: write it like "unix:///run/redis/redis.sock"` + "\n"},
		"two redis blocks": {"redis { url = \"redis://a:6379\" }\nredis { url = \"redis://b:6379\" }" + dataOnS3,
			"c.hcl:2,1: duplicate redis block; the first is at c.hcl:1,1\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := Parse([]byte(tt.src), "/etc/x/c.hcl")
			var out bytes.Buffer
			WriteDiagnostics(&out, diags)
			if got := strings.ReplaceAll(out.String(), "/etc/x/c.hcl", "c.hcl"); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if cfg != nil {
				t.Error("want a nil config")
			}
		})
	}
}

func TestParseS3Warnings(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string
	}{
		"data on S3 without redis": {`data_dir = "s3://bkt/partial/"
s3 {}
set "a" { destination = "s3://bkt/a/" }`,
			"c.hcl:1,12: warning: data_dir is on S3 without a redis block: run a single instance (several instances need redis for their locks)\n"},
		"redis with local data": {`redis { url = "unix:///run/redis.sock" }` + aSet,
			"c.hcl:1,1: warning: redis block with a local data_dir: several instances on local paths must not share data_dir, so give each its own (redis coordinates instances on S3)\n"},
		"unused s3 block": {`s3 { region = "eu-west-1" }` + aSet,
			"c.hcl:1,1: warning: s3 block is unused: no data_dir or destination is on S3 (s3://bucket/prefix/)\n"},
		"modes with S3": {`data_dir = "s3://bkt/partial/"
file_mode = "0640"
dir_mode = "0750"` + onS3 + `
set "a" {
  destination = "s3://bkt/a/"
  file_mode   = "0600"
  dir_mode    = "0700"
}`,
			"c.hcl:2,13: warning: file_mode does not apply to S3 objects (data_dir and destinations are on S3): leave it out\n" +
				"c.hcl:3,12: warning: dir_mode does not apply to S3 objects (data_dir and destinations are on S3): leave it out\n" +
				`c.hcl:8,17: warning: file_mode of set "a" does not apply to S3 objects (its destination is s3://bkt/a/): leave it out` + "\n" +
				`c.hcl:9,17: warning: dir_mode of set "a" does not apply to S3 objects (its destination is s3://bkt/a/): leave it out` + "\n"},
		"modes of a set on the S3 default": {`data_dir = "s3://bkt/partial/"
uploads_default_dest = "s3://bkt/files/"` + onS3 + `
set "a" { file_mode = "0600" }`,
			`c.hcl:5,23: warning: file_mode of set "a" does not apply to S3 objects (its destination is s3://bkt/files/a/): leave it out` + "\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) { warnedWith(t, tt.src, tt.want) })
	}
}

// An S3 config has no directories to probe or to look for leftovers in.
func TestS3SkipsLocalChecks(t *testing.T) {
	dir := t.TempDir()
	cfg, diags := Parse([]byte(`data_dir = "s3://bkt/partial/"
uploads_default_dest = "s3://bkt/files/"`+onS3+aSet), filepath.Join(dir, "config.hcl"))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	for _, create := range []bool{false, true} {
		if diags := cfg.ProbeDirs(create); len(diags) > 0 {
			t.Errorf("ProbeDirs(%v) = %v", create, diags)
		}
	}
	if left, diags := Leftovers(cfg); left != nil || diags != nil {
		t.Errorf("Leftovers = %v, %v", left, diags)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("the checks made %v next to the config", entries)
	}
}

func TestBucketName(t *testing.T) {
	tests := map[string]string{ // name: the rule it breaks, "" = a good name
		"abc":                   "",
		"my-bucket.example":     "",
		"0.0.0.0.0":             "",
		"xn-bucket":             "",
		"bucket-s3alias-not":    "",
		strings.Repeat("a", 63): "",
		"ab":                    "a bucket name must be 3 to 63 characters long, not 2",
		strings.Repeat("a", 64): "a bucket name must be 3 to 63 characters long, not 64",
		"My-bucket":             `a bucket name may hold only lower-case letters, digits, dots and hyphens, not "M"`,
		"my_bucket":             `a bucket name may hold only lower-case letters, digits, dots and hyphens, not "_"`,
		"bücket":                `a bucket name may hold only lower-case letters, digits, dots and hyphens, not "ü"`,
		"-bucket":               "a bucket name must begin and end with a letter or a digit",
		"bucket.":               "a bucket name must begin and end with a letter or a digit",
		"my..bucket":            "a bucket name must not have two dots in a row",
		"192.168.5.4":           "a bucket name must not be formatted as an IP address",
		"xn--bucket":            `a bucket name must not begin with "xn--" (S3 reserves it)`,
		"sthree-bucket":         `a bucket name must not begin with "sthree-" (S3 reserves it)`,
		"amzn-s3-demo-bucket":   `a bucket name must not begin with "amzn-s3-demo-" (S3 reserves it)`,
		"bucket-s3alias":        `a bucket name must not end with "-s3alias" (S3 reserves it)`,
		"bucket--ol-s3":         `a bucket name must not end with "--ol-s3" (S3 reserves it)`,
		"bucket.mrap":           `a bucket name must not end with ".mrap" (S3 reserves it)`,
		"bucket--x-s3":          `a bucket name must not end with "--x-s3" (S3 reserves it)`,
		"bucket--table-s3":      `a bucket name must not end with "--table-s3" (S3 reserves it)`,
	}
	for name, want := range tests {
		if got := bucketProblem(name); got != want {
			t.Errorf("bucketProblem(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzBucketName(f *testing.F) {
	for _, seed := range []string{"abc", "a.b-c", "192.168.5.4", "xn--a", "a..b", "A", "a.mrap", "-a-", "\xff\xfe\xfd"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if bucketProblem(name) != "" {
			return
		}
		if n := len(name); n < 3 || n > 63 || !alnum(name[0]) || !alnum(name[n-1]) || strings.Contains(name, "..") || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			t.Fatalf("bucketProblem accepts %q", name)
		}
		// An accepted name is a location whose String reads back as itself.
		loc, why := parseLocation("s3://"+name+"/p/", "data_dir")
		if why != "" || loc != (Location{Bucket: name, Prefix: "p/"}) {
			t.Fatalf("s3://%s/p/: %+v, %q", name, loc, why)
		}
		if back, _ := parseLocation(loc.String(), "data_dir"); back != loc {
			t.Fatalf("%s reads back as %+v", loc, back)
		}
	})
}
