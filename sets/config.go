package sets

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Config is a decoded, validated config file. Local paths are absolute: relative paths
// in the file are resolved against the directory of the config file, so that
// `uploadsets serve -config /etc/uploadsets/config.hcl` finds its data next to it
// whatever the working directory. data_dir and destinations may instead be on S3, all
// of them together (see Location).
type Config struct {
	Filename        string        // the file it was loaded from, as given
	Listen          string        // default "127.0.0.1:8080"
	PublicURL       string        // without trailing slash; "" = derive from the request's Host
	DataDir         Location      // local (absolute; default "./data") or on S3
	MaxSize         int64         // server-wide cap in bytes; default 1GiB
	DefaultDest     Location      // uploads_default_dest, local (absolute; default "./uploads") or on S3
	DefaultURL      string        // uploads_default_url, as written ("" default)
	ExpireAfter     time.Duration // abandoned partial uploads are removed after this; default 24h
	ShutdownTimeout time.Duration // default 30s
	NetworkTimeout  time.Duration // a request body that sends nothing for this long is cut; default 60s
	// ImageWorkers is how many image jobs run at once (image_workers); 0, the
	// default, is one per core.
	ImageWorkers int
	// TrustedProxies are the peers whose X-Forwarded-Host/-Proto and Forwarded
	// headers are believed; from anyone else those headers are dropped.
	TrustedProxies []netip.Prefix
	FileMode       os.FileMode // of placed files; default 0644; a set may override it
	DirMode        os.FileMode // of directories the server creates; default 0755
	DataDirAt      hcl.Range   // where data_dir is written (or the file's start), for probes
	LogLevel       string      // log { level }: trace, debug, info (default), warn, error
	LogFormat      string      // log { format }: text (default) or json
	Sets           []*Set      // in file order
	Notify         []*Notify   // notify blocks, in file order
	// S3 is the s3 block, nil when absent; it is there whenever a location is on S3.
	S3 *S3Config
	// Redis is the redis block, nil when absent: instances on S3 share it.
	Redis *RedisConfig
}

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "listen"},
		{Name: "public_url"},
		{Name: "data_dir"},
		{Name: "max_size"},
		{Name: "uploads_default_dest"},
		{Name: "uploads_default_url"},
		{Name: "expire_after"},
		{Name: "shutdown_timeout"},
		{Name: "network_timeout"},
		{Name: "image_workers"},
		{Name: "trusted_proxies"},
		{Name: "file_mode"},
		{Name: "dir_mode"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "set", LabelNames: []string{"name"}},
		{Type: "log"},
		{Type: "notify", LabelNames: []string{"name"}},
		{Type: "s3"},
		{Type: "redis"},
	},
}

// Load reads and decodes a config file. It reports every problem it finds, each with a
// position; the *Config is nil when the diagnostics hold an error.
func Load(filename string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil, hcl.Diagnostics{errorAt(fileStart(filename), fmt.Sprintf("cannot read config: %v", err))}
	}
	return Parse(src, filename)
}

// Parse decodes in-memory source; filename is used in positions and to resolve
// relative paths.
func Parse(src []byte, filename string) (*Config, hcl.Diagnostics) {
	base, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return nil, hcl.Diagnostics{errorAt(fileStart(filename), fmt.Sprintf("cannot resolve the config's directory: %v", err))}
	}
	// Keep decoding after syntax errors: the parser recovers at the next line, and the
	// rest of the file still deserves to be checked in the same run.
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	d := &decoder{base: base}
	for _, diag := range diags {
		if diag.Severity == hcl.DiagError && diag.Subject != nil {
			d.broken = append(d.broken, *diag.Subject)
		}
	}
	var cfg *Config
	if file != nil && file.Body != nil {
		cfg = d.config(file.Body, filename)
	}
	diags = append(diags, d.diags...)
	for _, diag := range diags {
		if diag.Subject == nil {
			diag.Subject = fileStart(filename).Ptr()
		}
	}
	sortDiags(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// declares reports whether body has a block of type typ, even one that Content left
// out for its missing or extra labels: that one is a block already reported, not a
// missing one.
func declares(body hcl.Body, typ string) bool {
	syntax, ok := body.(*hclsyntax.Body)
	if !ok {
		return true // only hclsyntax bodies are decoded; nothing to judge otherwise
	}
	for _, b := range syntax.Blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}

func fileStart(filename string) hcl.Range {
	return hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
}

// decoder collects diagnostics while filling a Config, so every step can keep going
// after a problem.
type decoder struct {
	base   string // directory relative paths are resolved against
	broken []hcl.Range
	diags  hcl.Diagnostics
	// s3Written is whether the file writes an s3:// location, even a wrong one.
	s3Written bool
	// s3Declared and redisDeclared are whether the file may have such a block, even
	// one that could not be decoded.
	s3Declared, redisDeclared bool
}

func (d *decoder) add(diags ...*hcl.Diagnostic) { d.diags = append(d.diags, diags...) }

// succeeds runs step and reports whether it added no diagnostic.
func (d *decoder) succeeds(step func()) bool {
	n := len(d.diags)
	step()
	return len(d.diags) == n
}

// parsed reports whether attr's value came through the parser intact. A value with a
// syntax error in it is what the parser salvaged, not what the operator wrote, so
// judging it would only add noise to the syntax error already reported.
func (d *decoder) parsed(attr *hcl.Attribute) bool {
	r := attr.Expr.Range()
	for _, b := range d.broken {
		if r.Overlaps(b) || r.ContainsOffset(b.Start.Byte) || b.Start.Byte == r.End.Byte {
			return false
		}
	}
	return true
}

func (d *decoder) config(body hcl.Body, filename string) *Config {
	content, diags := body.Content(rootSchema)
	d.add(diags...)
	cfg := &Config{
		Filename:        filename,
		Listen:          "127.0.0.1:8080",
		DataDir:         Location{Path: d.path("./data")},
		MaxSize:         1 << 30,
		DefaultDest:     Location{Path: d.path("./uploads")},
		ExpireAfter:     24 * time.Hour,
		ShutdownTimeout: 30 * time.Second,
		NetworkTimeout:  60 * time.Second,
		FileMode:        0o644,
		DirMode:         0o755,
		DataDirAt:       fileStart(filename),
		LogLevel:        "info",
		LogFormat:       "text",
	}
	attrs := content.Attributes
	if a := attrs["data_dir"]; a != nil {
		cfg.DataDirAt = a.Expr.Range()
	}
	d.listen(attrs["listen"], &cfg.Listen)
	if d.baseURL(attrs["public_url"], &cfg.PublicURL) {
		cfg.PublicURL = trimSlash(cfg.PublicURL)
	}
	// Sets are checked against data_dir and max_size unless those were wrong themselves:
	// the defaults standing in for them would give confusing errors.
	dataDirOK := d.succeeds(func() { d.location(attrs["data_dir"], "data_dir", &cfg.DataDir) })
	maxSizeOK := d.succeeds(func() { d.size(attrs["max_size"], &cfg.MaxSize) })
	defaultDestOK := d.succeeds(func() { d.location(attrs["uploads_default_dest"], "uploads_default_dest", &cfg.DefaultDest) })
	d.baseURL(attrs["uploads_default_url"], &cfg.DefaultURL)
	d.duration(attrs["expire_after"], &cfg.ExpireAfter)
	d.duration(attrs["shutdown_timeout"], &cfg.ShutdownTimeout)
	d.duration(attrs["network_timeout"], &cfg.NetworkTimeout)
	d.count(attrs["image_workers"], 256, &cfg.ImageWorkers)
	d.prefixes(attrs["trusted_proxies"], &cfg.TrustedProxies)
	d.mode(attrs["file_mode"], 0o600, &cfg.FileMode)
	d.mode(attrs["dir_mode"], 0o700, &cfg.DirMode)
	if dataDirOK && cfg.DataDir.IsS3() {
		// Destinations must then be on S3 too; a local one is reported with them.
		d.notOnS3(attrs["file_mode"], "", "data_dir and destinations are on S3")
		d.notOnS3(attrs["dir_mode"], "", "data_dir and destinations are on S3")
	}
	cfg.S3 = d.s3Block(content.Blocks.OfType("s3"))
	cfg.Redis = d.redisBlock(content.Blocks.OfType("redis"))
	// As for sets: a block that is there but could not be read is not missing.
	d.s3Declared = cfg.S3 != nil || declares(body, "s3") || len(d.broken) > 0
	d.redisDeclared = cfg.Redis != nil || declares(body, "redis") || len(d.broken) > 0

	// A server without sets would start and refuse every upload. After a syntax error
	// the parser may have dropped the blocks it could not read, so their absence proves
	// nothing then.
	if !declares(body, "set") && len(d.broken) == 0 {
		d.add(errorAt(fileStart(filename), `no set blocks: a config needs at least one set, like set "files" { extensions = documents }`))
	}
	d.logBlock(content.Blocks.OfType("log"), cfg)
	defaultDest := attrs["uploads_default_dest"]
	sets := d.sets(content.Blocks.OfType("set"), cfg, maxSizeOK, defaultDest, defaultDestOK)
	d.checkDestinations(cfg, attrs["data_dir"], dataDirOK, sets)
	if !defaultDestOK {
		defaultDest = nil
	}
	d.checkStorage(cfg, attrs["data_dir"], defaultDest, dataDirOK, sets)
	for _, s := range sets {
		cfg.Sets = append(cfg.Sets, s.Set)
	}
	cfg.Notify = d.notifies(content.Blocks.OfType("notify"), cfg.Sets)
	return cfg
}
