package events

import (
	"context"
	"encoding/json"
	"fmt"
)

// Metadata travels with every event (DESIGN §2). Audit reviewers rely on it to tell who did what,
// from where and as part of which request.
type Metadata struct {
	CorrelationID string `json:"correlationId"`
	CausationID   string `json:"causationId"`
	Actor         string `json:"actor"` // "account:<id>", "anonymous" or "system:<process>"
	RequestID     string `json:"requestId,omitempty"`
	ClientIP      string `json:"clientIp,omitempty"`
	UserAgent     string `json:"userAgent,omitempty"`
	// RequestFingerprint is the keyed fingerprint of the request that made the event, when it
	// carried an Idempotency-Key (commands.Idempotency): a later request under the same key is
	// a replay only if it has the same fingerprint. It holds nothing of a secret field.
	RequestFingerprint string `json:"requestFingerprint,omitempty"`
}

// ActorAnonymous is the actor of requests made without an API key.
const ActorAnonymous = "anonymous"

// AccountActor is the actor string of an authenticated account.
func AccountActor(accountID string) string { return "account:" + accountID }

// SystemActor is the actor string of a process manager.
func SystemActor(process string) string { return "system:" + process }

// Marshal encodes m for EventData.Metadata.
func (m Metadata) Marshal() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("marshal metadata: %v", err)) // a struct of strings always marshals
	}
	return b
}

// ParseMetadata decodes the metadata of a recorded event; unknown or missing fields are empty.
func ParseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse metadata: %w", err)
	}
	return m, nil
}

type metadataKey struct{}

// WithMetadata returns a context that carries the request's metadata. The HTTP layer sets it once
// per request; command handlers stamp it onto the events they append.
func WithMetadata(ctx context.Context, m Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, m)
}

// MetadataFrom returns the metadata stored by WithMetadata, or the zero Metadata.
func MetadataFrom(ctx context.Context) Metadata {
	m, _ := ctx.Value(metadataKey{}).(Metadata)
	return m
}

type principalKey struct{}

// Principal is the authenticated caller of a request.
type Principal struct {
	AccountID string
	SessionID string
	KeyID     string
}

// WithPrincipal returns a context carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller stored by WithPrincipal and whether there was one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.AccountID != ""
}
