package uploads

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"net/http"
	"strings"

	"github.com/tus/tusd/v2/pkg/handler"
)

// ChecksumAlgorithms are the algorithms of tus's checksum extension the stores
// verify, as Tus-Checksum-Algorithm lists them.
const ChecksumAlgorithms = "sha1,sha256,md5,crc32"

var hashes = map[string]func() hash.Hash{
	"sha1":   sha1.New,
	"sha256": sha256.New,
	"md5":    md5.New,
	"crc32":  func() hash.Hash { return crc32.NewIEEE() },
}

// Checksum is a request's Upload-Checksum: what the bytes it carries must hash to.
type Checksum struct {
	algorithm string
	sum       []byte
}

// ParseChecksum reads an Upload-Checksum header ("sha256 <base64>"). Its errors are
// 400s that say what is wrong.
func ParseChecksum(set, header string) (Checksum, error) {
	algo, b64, ok := strings.Cut(header, " ")
	if _, known := hashes[algo]; !known {
		return Checksum{}, handler.NewError("ERR_CHECKSUM_ALGORITHM_UNSUPPORTED", fmt.Sprintf(
			"set %q: Upload-Checksum algorithm %q is not supported; use one of %s", set, algo, ChecksumAlgorithms), http.StatusBadRequest)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(sum) != hashes[algo]().Size() {
		return Checksum{}, handler.NewError("ERR_CHECKSUM_MALFORMED", fmt.Sprintf(
			"set %q: Upload-Checksum must be %q followed by a space and the base64 of the %d-byte %s", set, algo, hashes[algo]().Size(), algo), http.StatusBadRequest)
	}
	return Checksum{algorithm: algo, sum: sum}, nil
}

type checksumKey struct{}

// ExpectChecksum returns a context in which SetChecksum can later name the checksum
// the request's bytes must match. It is split in two because the checksum is read
// inside tusd's middleware (so refusals carry its CORS headers), where a new context
// would no longer reach the store.
func ExpectChecksum(ctx context.Context) context.Context {
	return context.WithValue(ctx, checksumKey{}, new(Checksum))
}

// SetChecksum makes the store verify the bytes of the request with ctx against c
// before it acknowledges any of them. ctx must come from ExpectChecksum.
func SetChecksum(ctx context.Context, c Checksum) {
	if slot, ok := ctx.Value(checksumKey{}).(*Checksum); ok {
		*slot = c
	}
}

// ChecksumOf returns, when the request of ctx carries an Upload-Checksum, a fresh hash
// its bytes are to be fed to and the sum they must end at; a store acknowledges none
// of them unless they do.
func ChecksumOf(ctx context.Context) (h hash.Hash, want []byte, ok bool) {
	c, ok := ctx.Value(checksumKey{}).(*Checksum)
	if !ok || c.algorithm == "" {
		return nil, nil, false
	}
	return hashes[c.algorithm](), c.sum, true
}

// ChecksumMismatch is what a client is told of a request whose bytes did not match.
func ChecksumMismatch(set string) error {
	return handler.NewError("ERR_CHECKSUM_MISMATCH", fmt.Sprintf(
		"set %q: the bytes of this request do not match its Upload-Checksum; none of them were kept, resume from the offset HEAD reports", set), 460)
}
