package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Metadata travels with every event (DESIGN §2). Audit reviewers rely on it to tell who did what,
// from which network and as part of which request.
//
// The log is immutable and kept forever, so it keeps only what an audit needs of where a request
// came from: Marshal stores the client's network (ClientNetwork) instead of its address and the
// user agent without its comments (ReduceUserAgent). The full ClientIP lives only in the
// request's context, for the rate limits; events written before this rule still hold it, and
// ParseMetadata reduces it on read.
type Metadata struct {
	CorrelationID string `json:"correlationId"`
	CausationID   string `json:"causationId"`
	Actor         string `json:"actor"` // "account:<id>", "anonymous" or "system:<process>"
	RequestID     string `json:"requestId,omitempty"`
	// ClientIP is the request's client address as seen through the trusted proxies. Marshal never
	// writes it.
	ClientIP string `json:"clientIp,omitempty"`
	// ClientNetwork is the stored form of ClientIP: its IPv4 /24 or IPv6 /48 (ClientNetworkOf).
	ClientNetwork string `json:"clientNetwork,omitempty"`
	UserAgent     string `json:"userAgent,omitempty"`
	// RequestFingerprint is the keyed fingerprint of the request that made the event, when it
	// carried an Idempotency-Key (commands.Idempotency): a later request under the same key is
	// a replay only if it has the same fingerprint. It holds nothing of a secret field.
	RequestFingerprint string `json:"requestFingerprint,omitempty"`
	// Channel is how the request reached the service: ChannelAPI (the REST API) or ChannelMCP (a
	// tool of the MCP connector, which serves its calls through the same routes). Empty on events
	// written before it was recorded, and on those of process managers.
	Channel string `json:"channel,omitempty"`
}

// Channels of Metadata.Channel.
const (
	ChannelAPI = "api"
	ChannelMCP = "mcp"
)

// ActorAnonymous is the actor of requests made without an API key.
const ActorAnonymous = "anonymous"

// AccountActor is the actor string of an authenticated account.
func AccountActor(accountID string) string { return "account:" + accountID }

// SystemActor is the actor string of a process manager.
func SystemActor(process string) string { return "system:" + process }

// Marshal encodes m for EventData.Metadata, as stored: the client's network rather than its
// address, the user agent reduced.
func (m Metadata) Marshal() []byte {
	b, err := json.Marshal(m.stored())
	if err != nil {
		panic(fmt.Sprintf("marshal metadata: %v", err)) // a struct of strings always marshals
	}
	return b
}

// stored is m as the log keeps it.
func (m Metadata) stored() Metadata {
	if m.ClientIP != "" {
		m.ClientNetwork = ClientNetworkOf(m.ClientIP)
		m.ClientIP = ""
	}
	m.UserAgent = ReduceUserAgent(m.UserAgent)
	return m
}

// ParseMetadata decodes the metadata of a recorded event; unknown or missing fields are empty.
// The metadata of an event written before addresses were reduced comes back reduced too, so no
// reader shows more of an old event than of a new one.
func ParseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse metadata: %w", err)
	}
	return m.stored(), nil
}

// ClientNetworkOf returns the network an audit keeps of a client address: the IPv4 /24 or the
// IPv6 /48 (an IPv4-mapped IPv6 address counts as IPv4), as a prefix like "203.0.113.0/24";
// "" for anything that is not an address. A /24 or a /48 names an operator's or a site's
// network, not one subscriber.
func ClientNetworkOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// maxUserAgent bounds the stored user agent.
const maxUserAgent = 128

// ReduceUserAgent keeps the product tokens of a User-Agent ("Mozilla/5.0 AppleWebKit/537.36
// Chrome/120.0.0.0 Safari/537.36") and drops its comments, the parenthesised parts that name the
// operating system, device and build, which make a user agent a fingerprint. At most 128 bytes
// are kept, on a character boundary.
func ReduceUserAgent(ua string) string {
	var b strings.Builder
	depth := 0
	for _, r := range ua {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if len(out) <= maxUserAgent {
		return out
	}
	cut := maxUserAgent
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return strings.TrimSpace(out[:cut])
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

type channelKey struct{}

// WithChannel marks a request as arriving through channel (ChannelMCP for the connector's own
// calls into the API). It is a context value, never a header, so no client can claim a channel.
func WithChannel(ctx context.Context, channel string) context.Context {
	return context.WithValue(ctx, channelKey{}, channel)
}

// ChannelFrom returns the channel set by WithChannel, or ChannelAPI.
func ChannelFrom(ctx context.Context) string {
	if c, ok := ctx.Value(channelKey{}).(string); ok && c != "" {
		return c
	}
	return ChannelAPI
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
