package auth

import "context"

// A request's claims are handed from where the token is checked to the creation hook
// through its context. The token is checked inside tusd's middleware (so that a
// refusal carries its CORS headers), and a context made there no longer reaches tusd's
// callbacks: so the context gets an empty slot first, outside, and Grant fills it.

type claimsKey struct{}

type slot struct {
	claims Claims
	ok     bool
}

// WithSlot returns ctx with room for a request's claims.
func WithSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, claimsKey{}, new(slot))
}

// Grant records the claims of a request whose context came from WithSlot.
func Grant(ctx context.Context, c Claims) {
	if s, ok := ctx.Value(claimsKey{}).(*slot); ok {
		s.claims, s.ok = c, true
	}
}

// Granted returns the claims Grant recorded, if any.
func Granted(ctx context.Context) (Claims, bool) {
	if ctx == nil {
		return Claims{}, false
	}
	s, ok := ctx.Value(claimsKey{}).(*slot)
	if !ok || !s.ok {
		return Claims{}, false
	}
	return s.claims, true
}
