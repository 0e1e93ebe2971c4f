// Package uploads is what the hooks and the server know of an upload whatever store
// holds its bytes: its record and states, the errors clients are told, and the hints the
// creation hook hands a store. The stores (package store and its implementations) are
// built around it; nothing here touches a disk.
package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
	"syscall"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// State is where an upload stands once its bytes are all in.
type State string

const (
	// Receiving: bytes are still arriving, or all arrived and placement is pending
	// (a crash came between the last byte and placement).
	Receiving State = ""
	// Failed: every byte arrived, placement failed, and the client was told so. Its
	// retry places the upload; nothing else does, for the client may have started
	// over instead, and placing this one too would store the file twice.
	Failed State = "failed"
	// Placed: the bytes were moved into the set's destination under Record.Name.
	Placed State = "placed"
	// Rejected: the bytes failed a check after completion and were removed.
	Rejected State = "rejected"
)

// Record is what the store keeps about one upload. The embedded FileInfo is written
// exactly as tusd's filestore writes it, so the record of an unfinished upload stays
// readable by tusd's tools; a finished one has its state change appended.
type Record struct {
	handler.FileInfo
	State State  `json:",omitempty"`
	Name  string `json:",omitempty"` // final name in the destination, once placed
	// Intended is the name a copy into another file system was about to be linked
	// as (see placement.Request.Intend).
	Intended string `json:",omitempty"`
	Reason   string `json:",omitempty"` // why it was rejected, in words for the client
	// Limit is the most the upload may reach while its length is unknown.
	Limit int64 `json:",omitempty"`
	// Owner is who created it (an upload token's sub); Folder and Rename say where
	// it goes and under what name, when its token said so.
	Owner  string `json:",omitempty"`
	Folder string `json:",omitempty"`
	Rename string `json:",omitempty"`
	// Thumbs are the placed thumbnails of an image set's upload, by label: paths
	// relative to the destination.
	Thumbs  map[string]string `json:",omitempty"`
	Created time.Time
	// Activity is when the upload last changed: its last byte written, or its
	// placement or rejection. Expiry counts from it.
	Activity time.Time `json:"-"`
}

// Complete reports whether every byte of the upload has arrived.
func (r Record) Complete() bool { return !r.SizeIsDeferred && r.Offset == r.Size }

// Unplaced reports whether every byte arrived but the upload is not placed yet.
func (r Record) Unplaced() bool {
	return (r.State == Receiving || r.State == Failed) && r.Complete()
}

// ReportedOffset is the offset clients are told, by HEAD and the status API alike.
// Every byte of an unplaced upload is here, but offset == length would make a client
// declare success; one byte short makes it send the last byte again, and that PATCH
// places the upload. That byte was never acknowledged, so nothing acknowledged is
// taken back. (A zero-byte upload has no byte to hold back: see the server.)
func (r Record) ReportedOffset() int64 {
	if r.Unplaced() && r.Size > 0 {
		return r.Offset - 1
	}
	return r.Offset
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ValidID reports whether id has the shape of an ID this store hands out. Anything else
// is refused before it becomes part of a path.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// NewID returns a new upload ID: 128 random bits.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	// ErrStorageFull is answered when the disk is full (StorageFull says for which
	// set). It is a 5xx so that clients retry, and the bytes written before the error
	// stay acknowledged.
	ErrStorageFull = handler.NewError("ERR_STORAGE_FULL", "the server has no space left to store this upload; retry later", http.StatusServiceUnavailable)
	// ErrInternal replaces internal errors in responses: their text holds paths.
	ErrInternal = handler.NewError("ERR_INTERNAL_SERVER_ERROR", "internal error", http.StatusInternalServerError)
	// ErrExpired answers for an unfinished upload that saw no activity for too long;
	// the response says for how long (see expiredError).
	ErrExpired = handler.NewError("ERR_UPLOAD_EXPIRED", "this upload expired", http.StatusGone)
	// ErrPlacedFile refuses to terminate an upload whose file is already in place;
	// the answer names the set (see forSet).
	ErrPlacedFile = handler.NewError("ERR_UPLOAD_COMPLETE", "this upload is complete and its file is in place; it cannot be terminated through the upload URL", http.StatusForbidden)
)

// StorageFull is ErrStorageFull for one set; errors.Is matches it by its code.
func StorageFull(set string) error { return ForSet(ErrStorageFull, set) }

// Failure is what a client is told when a step inside the server failed: the set, the
// step and the cause in words ("set "photos": could not place the file: permission
// denied on the destination"), never a path; the log line has that. where names the
// directory the step works in.
func Failure(set, step, where string, err error) error {
	if IsNoSpace(err) {
		return StorageFull(set)
	}
	cause := "internal error"
	switch {
	case errors.Is(err, fs.ErrPermission):
		cause = "permission denied on the " + where
	case errors.Is(err, syscall.EROFS):
		cause = "the " + where + " is read-only"
	case errors.Is(err, syscall.EIO):
		cause = "an I/O error on the " + where
	case errors.Is(err, fs.ErrNotExist):
		cause = "the " + where + " is missing"
	}
	return handler.NewError(ErrInternal.ErrorCode, fmt.Sprintf("set %q: %s: %s", set, step, cause), http.StatusInternalServerError)
}

// forSet is e with the set's name in front of its message, as every refusal has it.
func ForSet(e handler.Error, set string) error {
	return handler.NewError(e.ErrorCode, fmt.Sprintf("set %q: %s", set, e.Message), e.HTTPResponse.StatusCode)
}

// The FileInfo.Storage keys through which the creation hook hands the store what it
// keeps of an upload beyond tus's FileInfo.
const (
	LimitKey  = "uploadsets.limit"  // a lower limit than the set's (a token's max_size)
	OwnerKey  = "uploadsets.owner"  // Record.Owner
	FolderKey = "uploadsets.folder" // Record.Folder
	RenameKey = "uploadsets.rename" // Record.Rename
)

// Event kinds the store reports through Options.Changed.
const (
	Created    = "created"
	Terminated = "terminated"
	Expired    = "expired"
)

// IsNoSpace reports whether err is a full disk or an exhausted quota.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

type bodyKey struct{}

// WithBodyToWrite marks a creation whose request goes on to write its body before
// anything is answered (tus's creation-with-upload): a store may then make the
// creation durable while the body is written, and must have made it so before the
// write returns. Not for the IETF draft's creation, whose 104 tells the client the
// upload's URL before any byte is written.
func WithBodyToWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, bodyKey{}, true)
}

// BodyToWrite reports whether ctx comes from WithBodyToWrite.
func BodyToWrite(ctx context.Context) bool {
	v, _ := ctx.Value(bodyKey{}).(bool)
	return v
}

type createdHookKey struct{}

// WithCreatedHook returns a context in which a store calls fn once an upload it
// creates is durable (RunCreatedHook): the server logs the creation there, before
// anything that follows in the same request (a creation-with-upload's placement).
func WithCreatedHook(ctx context.Context, fn func(Record)) context.Context {
	return context.WithValue(ctx, createdHookKey{}, fn)
}

// RunCreatedHook calls the hook of ctx, if it has one, for rec.
func RunCreatedHook(ctx context.Context, rec Record) {
	if fn, ok := ctx.Value(createdHookKey{}).(func(Record)); ok {
		fn(rec)
	}
}
