package commands

import "context"

type answeredKey struct{}

// WithAnsweredBefore marks a request that the idempotency layer recognised as a retry of one it
// already answered (the same key and the same request, within the key's lifetime) but whose
// answer it did not keep (SecretAnswers). A handler whose answer shows a credential once uses it
// to tell a client's retry from a replay of an old request (see Accounts.Refresh).
func WithAnsweredBefore(ctx context.Context) context.Context {
	return context.WithValue(ctx, answeredKey{}, true)
}

// AnsweredBefore reports whether the request is a retry of one already answered (WithAnsweredBefore).
func AnsweredBefore(ctx context.Context) bool {
	v, _ := ctx.Value(answeredKey{}).(bool)
	return v
}
