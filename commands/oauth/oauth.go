// Package oauth is the OAuth 2.1 authorization server the MCP connector signs in with (MCP
// authorization, 2025-06-18): RFC 9728 protected resource metadata, RFC 8414 authorization server
// metadata, RFC 7591 dynamic registration of public clients, the authorization-code grant with
// PKCE (S256 only, required), refresh with rotation, RFC 7009 revocation, and the browser sign-in
// page (the e-mailed-code flow of internal/webpage).
//
// github.com/ory/fosite parses and validates the requests (client, exact redirect URI, response
// type, state, scopes, PKCE) and writes the RFC 6749 answers and errors; the grants are ours,
// because the tokens are Litehost sessions: the access token is an ordinary API key and the
// refresh token an ordinary refresh token of a session started through commands.Accounts, so
// revocation, reuse detection and rate limits are the API's own.
//
// Nothing of the flow is stored but that session: a client ID is the signed registration itself,
// and an authorization code is the sealed grant (AES-GCM under a key derived from the server
// secret). A code is spent by starting its session, whose ID derives from the code's ID: a second
// use finds that session started, revokes it and fails.
package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/pkce"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// Scope is the one scope: manage the account's Litehost projects, as its API key can.
const Scope = "litehost"

// CodeTTL is how long an authorization code can be exchanged.
const CodeTTL = time.Minute

// Sessions is the part of commands.Accounts the grants use.
type Sessions interface {
	StartSession(ctx context.Context, commandID uuid.UUID, accountID string) (commands.SignInResult, error)
	Refresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (commands.SignInResult, error)
	RevokeSession(ctx context.Context, commandID uuid.UUID, accountID, sessionID string) (events.Position, error)
	RevokeRefresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (events.Position, error)
}

// KeyAuthenticator resolves an API key to its session (readapi.Authenticator), for revocation.
type KeyAuthenticator interface {
	Authenticate(ctx context.Context, header string) (events.Principal, error)
}

// registration is what a client ID carries (signed, not secret).
type registration struct {
	Name         string   `json:"n"`
	RedirectURIs []string `json:"r"`
	IssuedAt     int64    `json:"t"`
}

// grant is what an authorization code carries (sealed).
type grant struct {
	ID        uuid.UUID `json:"i"`
	ClientID  string    `json:"c"`
	Redirect  string    `json:"r"`
	Challenge string    `json:"p"`
	Method    string    `json:"m"`
	AccountID string    `json:"a"`
	Scopes    []string  `json:"s"`
	Expires   int64     `json:"e"`
}

const (
	clientPrefix = "lhc_"
	codePrefix   = "lhcode_"
	purposeSeal  = "oauth-code-seal"
	purposeMAC   = "oauth-client-id"
)

// codec signs client IDs and seals authorization codes under keys derived from the server secret.
type codec struct {
	keys *secret.Keyring
	aead cipher.AEAD
	now  func() time.Time
}

func newCodec(keys *secret.Keyring, now func() time.Time) *codec {
	block, err := aes.NewCipher(keys.Sum(purposeSeal, "aes-256-gcm"))
	if err != nil {
		panic("oauth: " + err.Error()) // a 32-byte key always makes a cipher
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("oauth: " + err.Error())
	}
	return &codec{keys: keys, aead: g, now: now}
}

func (c *codec) clientID(r registration) string {
	raw, _ := json.Marshal(r) // plain strings and ints always marshal
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return clientPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(c.keys.Sum(purposeMAC, payload)[:16])
}

func (c *codec) registration(clientID string) (registration, bool) {
	rest, ok := strings.CutPrefix(clientID, clientPrefix)
	if !ok {
		return registration{}, false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return registration{}, false
	}
	want := base64.RawURLEncoding.EncodeToString(c.keys.Sum(purposeMAC, payload)[:16])
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return registration{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	var r registration
	if err != nil || json.Unmarshal(raw, &r) != nil || len(r.RedirectURIs) == 0 {
		return registration{}, false
	}
	return r, true
}

func (c *codec) seal(g grant) string {
	raw, _ := json.Marshal(g)
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return codePrefix + base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, raw, []byte(purposeSeal)))
}

// open returns the grant of a code that we sealed and that has not expired.
func (c *codec) open(code string) (grant, bool) {
	rest, ok := strings.CutPrefix(code, codePrefix)
	if !ok {
		return grant{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) < c.aead.NonceSize() {
		return grant{}, false
	}
	raw, err := c.aead.Open(nil, b[:c.aead.NonceSize()], b[c.aead.NonceSize():], []byte(purposeSeal))
	var g grant
	if err != nil || json.Unmarshal(raw, &g) != nil {
		return grant{}, false
	}
	if !c.now().Before(time.Unix(g.Expires, 0)) {
		return grant{}, false
	}
	return g, true
}

// store is fosite's storage: clients come from their signed IDs, PKCE state from the sealed code.
type store struct{ codec *codec }

func (s store) GetClient(_ context.Context, id string) (fosite.Client, error) {
	r, ok := s.codec.registration(id)
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return &client{DefaultClient: fosite.DefaultClient{
		ID: id, RedirectURIs: r.RedirectURIs, Public: true, Scopes: []string{Scope},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
	}, name: r.Name}, nil
}

// ClientAssertionJWTValid and SetClientAssertionJWT serve private_key_jwt client
// authentication, which public clients never use.
func (store) ClientAssertionJWTValid(context.Context, string) error { return nil }

func (store) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return fosite.ErrServerError.WithHint("client assertions are not supported")
}

func (s store) GetPKCERequestSession(_ context.Context, code string, _ fosite.Session) (fosite.Requester, error) {
	g, ok := s.codec.open(code)
	if !ok {
		return nil, fosite.ErrInvalidGrant.WithHint("The authorization code is not valid or has expired.")
	}
	cl, err := s.GetClient(context.Background(), g.ClientID)
	if err != nil {
		return nil, fosite.ErrInvalidGrant.WithHint("The authorization code names no client.")
	}
	return &fosite.Request{Client: cl, Form: url.Values{"code_challenge": {g.Challenge}, "code_challenge_method": {g.Method}}}, nil
}

// CreatePKCERequestSession stores nothing: the challenge is sealed into the code itself.
func (store) CreatePKCERequestSession(context.Context, string, fosite.Requester) error { return nil }

// DeletePKCERequestSession deletes nothing: the code is spent by starting its session.
func (store) DeletePKCERequestSession(context.Context, string) error { return nil }

// client is a registered public client and its display name.
type client struct {
	fosite.DefaultClient
	name string
}

// codeStrategy lets fosite's PKCE handler find the code's PKCE state: the "signature" of a code
// is the code, which the store opens.
type codeStrategy struct{}

func (codeStrategy) AuthorizeCodeSignature(_ context.Context, token string) string { return token }

func (codeStrategy) GenerateAuthorizeCode(context.Context, fosite.Requester) (string, string, error) {
	return "", "", fosite.ErrServerError.WithHint("codes are sealed by the code grant")
}

func (codeStrategy) ValidateAuthorizeCode(context.Context, fosite.Requester, string) error {
	return nil
}

// codeGrant issues sealed codes at the authorization endpoint and exchanges them for a new
// Litehost session at the token endpoint.
type codeGrant struct {
	codec    *codec
	sessions Sessions
	waiter   commands.Waiter
	issuer   string
	now      func() time.Time
}

func (h *codeGrant) HandleAuthorizeEndpointRequest(_ context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	if !ar.GetResponseTypes().ExactOne("code") {
		return nil
	}
	redirect := ar.GetRedirectURI().String()
	// fosite lets a loopback redirect URI change its port (RFC 8252 §7.3); registration here is
	// exact, so use is too.
	if !slices.Contains(ar.GetClient().GetRedirectURIs(), redirect) {
		return fosite.ErrInvalidRequest.WithHint("The redirect_uri is not one the client registered.")
	}
	sess, _ := ar.GetSession().(*fosite.DefaultSession)
	if sess == nil || sess.Subject == "" {
		return fosite.ErrServerError.WithHint("No signed-in account.")
	}
	form := ar.GetRequestForm()
	code := h.codec.seal(grant{
		ID: uuid.New(), ClientID: ar.GetClient().GetID(), Redirect: redirect,
		Challenge: form.Get("code_challenge"), Method: form.Get("code_challenge_method"),
		AccountID: sess.Subject, Scopes: ar.GetGrantedScopes(), Expires: h.now().Add(CodeTTL).Unix(),
	})
	resp.AddParameter("code", code)
	resp.AddParameter("state", ar.GetState())
	resp.AddParameter("iss", h.issuer) // RFC 9207: the client can tell which server answered
	ar.SetResponseTypeHandled("code")
	return nil
}

func (h *codeGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *codeGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne("authorization_code")
}

// fosite calls every token handler; one that does not apply answers ErrUnknownRequest.

func (h *codeGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	g, ok := h.codec.open(r.GetRequestForm().Get("code"))
	switch {
	case !ok:
		return fosite.ErrInvalidGrant.WithHint("The authorization code is not valid or has expired.")
	case g.ClientID != r.GetClient().GetID():
		return fosite.ErrInvalidGrant.WithHint("The authorization code was issued to another client.")
	case r.GetRequestForm().Get("redirect_uri") != g.Redirect:
		return fosite.ErrInvalidGrant.WithHint("The redirect_uri is not the one of the authorization request.")
	}
	for _, s := range g.Scopes {
		r.GrantScope(s)
	}
	sess := r.GetSession().(*fosite.DefaultSession)
	sess.Subject = g.AccountID
	sess.Extra = map[string]any{"code": g.ID.String()}
	return nil
}

func (h *codeGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	sess := r.GetSession().(*fosite.DefaultSession)
	codeID, err := uuid.Parse(fmt.Sprint(sess.Extra["code"]))
	if err != nil {
		return fosite.ErrServerError.WithHint("The code grant lost its code.")
	}
	res, err := h.sessions.StartSession(ctx, uuid.NewSHA1(codeID, []byte("oauth-code")), sess.Subject)
	if errors.Is(err, commands.ErrSessionStartedBefore) {
		// RFC 6749 §4.1.2: a code used twice revokes what it gave.
		if _, rerr := h.sessions.RevokeSession(context.WithoutCancel(ctx), uuid.New(), res.AccountID, res.SessionID); rerr != nil {
			return fosite.ErrServerError.WithWrap(rerr).WithHint("The reused code's session could not be revoked.")
		}
		return fosite.ErrInvalidGrant.WithHint("The authorization code was already used; the tokens it gave are revoked.")
	}
	if errors.Is(err, commands.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The account of the authorization code is gone.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	wait(ctx, h.waiter, res.Position)
	issue(resp, res, r.GetGrantedScopes(), h.now())
	return nil
}

// wait gives read-your-writes: the new key works on the API once the token answer is out. It is
// best effort, as Reply's wait: the session is durable either way.
func wait(ctx context.Context, w commands.Waiter, pos events.Position) {
	if w != nil && !pos.IsZero() {
		_ = w.WaitFor(ctx, pos)
	}
}

// refreshGrant rotates a session through commands.Accounts.Refresh.
type refreshGrant struct {
	sessions Sessions
	waiter   commands.Waiter
	now      func() time.Time
}

func (h *refreshGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *refreshGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne("refresh_token")
}

func (h *refreshGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if r.GetRequestForm().Get("refresh_token") == "" {
		return fosite.ErrInvalidRequest.WithHint("The refresh_token parameter is missing.")
	}
	if !r.GetClient().GetGrantTypes().Has("refresh_token") {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not use the refresh_token grant.")
	}
	r.GrantScope(Scope)
	return nil
}

func (h *refreshGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	res, err := h.sessions.Refresh(ctx, uuid.New(), r.GetRequestForm().Get("refresh_token"))
	switch {
	case errors.Is(err, account.ErrRefreshReused):
		return fosite.ErrInvalidGrant.WithHint("The refresh token was already used; its session is revoked.")
	case errors.Is(err, account.ErrRefreshInvalid), errors.Is(err, account.ErrRefreshExpired), errors.Is(err, account.ErrSessionRetired):
		return fosite.ErrInvalidGrant.WithHint("The refresh token is not valid or has expired.")
	case errors.Is(err, commands.ErrRevocationUnconfirmed):
		return fosite.ErrTemporarilyUnavailable.WithHint("Try again shortly.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err)
	}
	wait(ctx, h.waiter, res.Position)
	issue(resp, res, r.GetGrantedScopes(), h.now())
	return nil
}

// issue writes a session's credentials as the token response.
func issue(resp fosite.AccessResponder, res commands.SignInResult, scopes fosite.Arguments, now time.Time) {
	resp.SetAccessToken(res.APIKey)
	resp.SetTokenType("Bearer")
	resp.SetExpiresIn(res.ExpiresAt.Sub(now))
	resp.SetScopes(scopes)
	resp.SetExtra("refresh_token", res.RefreshToken)
}

// revoker ends the session of a refresh token or an API key (RFC 7009). Unknown tokens are not
// an error (§2.2).
type revoker struct {
	sessions Sessions
	auth     KeyAuthenticator
	waiter   commands.Waiter
}

func (h *revoker) RevokeToken(ctx context.Context, token string, _ fosite.TokenType, _ fosite.Client) error {
	switch {
	case strings.HasPrefix(token, commands.RefreshTokenPrefix):
		pos, err := h.sessions.RevokeRefresh(ctx, uuid.New(), token)
		if errors.Is(err, account.ErrRefreshInvalid) {
			return nil
		}
		wait(ctx, h.waiter, pos)
		return err
	case commands.ValidAPIKey(token):
		p, err := h.auth.Authenticate(ctx, "Bearer "+token)
		if err != nil {
			return nil // unknown, expired or already revoked
		}
		pos, err := h.sessions.RevokeSession(ctx, uuid.New(), p.AccountID, p.SessionID)
		if errors.Is(err, commands.ErrNotFound) {
			return nil
		}
		wait(ctx, h.waiter, pos)
		return err
	}
	return nil
}

// newProvider assembles fosite with our grants and its PKCE handler.
func newProvider(c *codec, sessions Sessions, auth KeyAuthenticator, waiter commands.Waiter, issuer string, now func() time.Time) *fosite.Fosite {
	cfg := &fosite.Config{
		AuthorizeCodeLifespan:          CodeTTL,
		AccessTokenLifespan:            account.DefaultKeyIdleTTL,
		RefreshTokenLifespan:           account.RefreshTTL,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		RedirectSecureChecker:          func(_ context.Context, u *url.URL) bool { return SecureRedirect(u) },
		TokenURL:                       issuer + "/oauth/token",
		GlobalSecret:                   c.keys.Sum("oauth-fosite", "global-v1"),
	}
	st := store{codec: c}
	code := &codeGrant{codec: c, sessions: sessions, waiter: waiter, issuer: issuer, now: now}
	pk := &pkce.Handler{AuthorizeCodeStrategy: codeStrategy{}, Storage: st, Config: cfg}
	refresh := &refreshGrant{sessions: sessions, waiter: waiter, now: now}
	cfg.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{code, pk}
	cfg.TokenEndpointHandlers = fosite.TokenEndpointHandlers{code, pk, refresh}
	cfg.RevocationHandlers = fosite.RevocationHandlers{&revoker{sessions: sessions, auth: auth, waiter: waiter}}
	return &fosite.Fosite{Store: st, Config: cfg}
}

// SecureRedirect admits the redirect URIs a client may register: https, or http to a loopback
// address (a native app on this machine, RFC 8252 §7.3). No fragment, no user info.
func SecureRedirect(u *url.URL) bool {
	if u == nil || u.Fragment != "" || u.User != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}
