package e2e

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

func TestAbandonedUploadsExpire(t *testing.T) {
	s := startServer(t, `
set "files" {
  extensions   = all
  expire_after = "1s"
}`)
	res, _ := create(t, s.URL+"/uploads/files/", "left.bin", 100)
	if res.Header.Get("Upload-Expires") == "" {
		t.Error("POST without Upload-Expires")
	}
	abandoned := res.Header.Get("Location")
	res, _ = patch(t, abandoned, 0, randomBytes(t, 10))
	exp, err := http.ParseTime(res.Header.Get("Upload-Expires"))
	if err != nil || exp.Before(time.Now()) || exp.After(time.Now().Add(3*time.Second)) {
		t.Errorf("PATCH Upload-Expires %q", res.Header.Get("Upload-Expires"))
	}
	data := randomBytes(t, 10)
	_, last := upload(t, s.URL+"/uploads/files/", "kept.bin", data, 10)
	if last.Header.Get("Upload-Expires") != "" {
		t.Error("the completing response carries Upload-Expires")
	}

	deadline := time.Now().Add(10 * time.Second)
	for len(files(t, filepath.Join(s.Dir, "data", "files"))) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := files(t, filepath.Join(s.Dir, "data", "files")); len(left) != 0 {
		t.Errorf("the janitor left %v", left)
	}
	if res, _ := do(t, http.MethodHead, abandoned, nil, nil); res.StatusCode != 404 && res.StatusCode != 410 {
		t.Errorf("HEAD of an expired upload: %d, want 404 or 410", res.StatusCode)
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "kept.bin")) != sha(data) {
		t.Error("a placed file was touched by expiry")
	}
}
