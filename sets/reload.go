package sets

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// ReloadableFrom reports, as errors at the attributes concerned, what c changes of the
// running config that a reload cannot apply: the s3 block (the S3 client is made at
// start), the redis block (the locks of uploads in progress are held there), and
// data_dir on S3 or between a local disk and S3 (uploads in progress would be left
// behind, and destinations must follow it). A change of a local data_dir is not one of
// them: the server keeps the running one and says so.
func (c *Config) ReloadableFrom(running *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	const restart = "restart uploadsets to apply it"
	if (c.DataDir.IsS3() || running.DataDir.IsS3()) && c.DataDir != running.DataDir {
		diags = append(diags, errorAt(c.DataDirAt, fmt.Sprintf("data_dir changed from %s to %s: a reload cannot move data_dir to, from or within S3 (uploads in progress would be left behind); %s", running.DataDir, c.DataDir, restart)))
	}
	if !sameS3(c.S3, running.S3) {
		at := fileStart(c.Filename)
		if c.S3 != nil {
			at = c.S3.At
		}
		diags = append(diags, errorAt(at, "the s3 block differs from the running one: a reload cannot add, remove or change it (the S3 client is made at start); "+restart))
	}
	if !sameRedis(c.Redis, running.Redis) {
		at := fileStart(c.Filename)
		if c.Redis != nil {
			at = c.Redis.At
		}
		diags = append(diags, errorAt(at, "the redis block differs from the running one: a reload cannot add, remove or change it (the locks of uploads in progress are held there); "+restart))
	}
	return diags
}

func sameS3(a, b *S3Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.At, y.At = hcl.Range{}, hcl.Range{}
	return x == y
}

func sameRedis(a, b *RedisConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URL == b.URL
}
