// Package sets is the upload-set domain: the operator's config (decoded with source
// positions so every mistake can be pointed at), the extension presets, the policy an
// upload must meet, and the rules that turn a client's file name into a safe final one.
//
// It knows nothing of HTTP or tus: adapters in other packages translate its errors.
package sets
