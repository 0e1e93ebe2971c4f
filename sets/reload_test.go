package sets

import (
	"bytes"
	"testing"
)

func TestReloadableFrom(t *testing.T) {
	const (
		local   = `set "a" {}`
		s3Data  = "data_dir = \"s3://bkt/partial/\"\nuploads_default_dest = \"s3://bkt/files/\"\n"
		s3Block = "s3 { region = \"us-east-1\" }\n"
		redis   = "redis { url = \"redis://127.0.0.1:6379/0\" }\n"
		onS3    = s3Data + s3Block + redis + local
	)
	tests := map[string]struct {
		running, next string
		want          string // WriteDiagnostics output
	}{
		"unchanged":                 {onS3, onS3, ""},
		"unchanged, blocks moved":   {onS3, "\n\n" + redis + s3Block + s3Data + local, ""},
		"sets may change":           {onS3, onS3 + "\nset \"b\" {}", ""},
		"a local data_dir may move": {local, "data_dir = \"/srv/data\"\n" + local, ""}, // the server keeps the running one
		"local to S3": {local, onS3,
			"c.hcl:1,12: data_dir changed from /etc/x/data to s3://bkt/partial/: a reload cannot move data_dir to, from or within S3 (uploads in progress would be left behind); restart uploadsets to apply it\n" +
				"c.hcl:3,1: the s3 block differs from the running one: a reload cannot add, remove or change it (the S3 client is made at start); restart uploadsets to apply it\n" +
				"c.hcl:4,1: the redis block differs from the running one: a reload cannot add, remove or change it (the locks of uploads in progress are held there); restart uploadsets to apply it\n"},
		"S3 to local": {onS3, local,
			"c.hcl:1,1: data_dir changed from s3://bkt/partial/ to /etc/x/data: a reload cannot move data_dir to, from or within S3 (uploads in progress would be left behind); restart uploadsets to apply it\n" +
				"c.hcl:1,1: the s3 block differs from the running one: a reload cannot add, remove or change it (the S3 client is made at start); restart uploadsets to apply it\n" +
				"c.hcl:1,1: the redis block differs from the running one: a reload cannot add, remove or change it (the locks of uploads in progress are held there); restart uploadsets to apply it\n"},
		"within S3": {onS3, "data_dir = \"s3://bkt/partial2/\"\nuploads_default_dest = \"s3://bkt/files/\"\n" + s3Block + redis + local,
			"c.hcl:1,12: data_dir changed from s3://bkt/partial/ to s3://bkt/partial2/: a reload cannot move data_dir to, from or within S3 (uploads in progress would be left behind); restart uploadsets to apply it\n"},
		"s3 changed": {onS3, s3Data + "s3 {\n  region = \"us-east-1\"\n  path_style = true\n}\n" + redis + local,
			"c.hcl:3,1: the s3 block differs from the running one: a reload cannot add, remove or change it (the S3 client is made at start); restart uploadsets to apply it\n"},
		"redis removed": {onS3, s3Data + s3Block + local,
			"c.hcl:1,1: the redis block differs from the running one: a reload cannot add, remove or change it (the locks of uploads in progress are held there); restart uploadsets to apply it\n"},
		"redis added to a local config": {local, redis + local,
			"c.hcl:1,1: the redis block differs from the running one: a reload cannot add, remove or change it (the locks of uploads in progress are held there); restart uploadsets to apply it\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			running, diags := Parse([]byte(tt.running), "/etc/x/c.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			next, diags := Parse([]byte(tt.next), "/etc/x/c.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var out bytes.Buffer
			diags = next.ReloadableFrom(running)
			WriteDiagnostics(&out, diags)
			if got := bytes.ReplaceAll(out.Bytes(), []byte("/etc/x/c.hcl"), []byte("c.hcl")); string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if len(diags) > 0 && !diags.HasErrors() {
				t.Error("a change a reload cannot apply is an error")
			}
		})
	}
}
