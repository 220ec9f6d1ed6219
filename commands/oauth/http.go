package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/clientip"
	"github.com/litehost/litehost/internal/webpage"
)

// Config configures the authorization server.
type Config struct {
	// Issuer is the public base URL (LITEHOST_PUBLIC_URL): the issuer and the resource's origin.
	Issuer string
	// Resource is the protected resource, Issuer + "/mcp".
	Resource string
	// EmailEnabled is false when the server does not sign in by e-mail.
	EmailEnabled bool
	// RegisterLimit registrations and TokenLimit token requests per Window per client address
	// (defaults 20, 60 and one hour).
	RegisterLimit, TokenLimit int
	Window                    time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the authorization server's routes.
type Server struct {
	cfg      Config
	codec    *codec
	provider *fosite.Fosite
	limiter  commands.RateTaker
	page     *page
	logger   *slog.Logger
}

// New returns the authorization server. signIn and sessions are the API's OTP and account
// handlers; auth resolves API keys for revocation; limiter counts per client; waiter (may be
// nil) makes a token answer wait until its key works on the API.
func New(cfg Config, keys *secret.Keyring, pages *webpage.Pages, signIn SignIn, sessions Sessions, auth KeyAuthenticator,
	limiter commands.RateTaker, waiter commands.Waiter, logger *slog.Logger) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RegisterLimit <= 0 {
		cfg.RegisterLimit = 20
	}
	if cfg.TokenLimit <= 0 {
		cfg.TokenLimit = 60
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Hour
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	c := newCodec(keys, cfg.Now)
	s := &Server{cfg: cfg, codec: c, provider: newProvider(c, sessions, auth, waiter, cfg.Issuer, cfg.Now), limiter: limiter, logger: logger}
	s.page = &page{srv: s, pages: pages, signIn: signIn, sessions: sessions, emailEnabled: cfg.EmailEnabled,
		stateKey: keys.Sum("oauth-page", "state-ref-v1"), logger: logger}
	return s
}

// Register adds the metadata documents, registration, the authorization endpoint and its
// sign-in page, the token and the revocation endpoints.
func (s *Server) Register(r gin.IRoutes) {
	r.GET("/.well-known/oauth-protected-resource", s.resourceMetadata)
	r.GET("/.well-known/oauth-protected-resource/mcp", s.resourceMetadata)
	r.GET("/.well-known/oauth-authorization-server", s.serverMetadata)
	r.POST("/oauth/register", s.register)
	r.GET("/oauth/authorize", s.page.start)
	r.POST("/oauth/authorize/email", s.page.sendCode)
	r.POST("/oauth/authorize/code", s.page.verify)
	r.POST("/oauth/authorize/consent", s.page.consent)
	r.POST("/oauth/token", s.token)
	r.POST("/oauth/revoke", s.revoke)
}

// ResourceMetadataURL is what a 401 of the resource names in WWW-Authenticate (RFC 9728 §5.1).
func (s *Server) ResourceMetadataURL() string {
	return s.cfg.Issuer + "/.well-known/oauth-protected-resource"
}

func (s *Server) resourceMetadata(c *gin.Context) {
	s.publicJSON(c, http.StatusOK, gin.H{
		"resource":                 s.cfg.Resource,
		"authorization_servers":    []string{s.cfg.Issuer},
		"scopes_supported":         []string{Scope},
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "Litehost",
	})
}

func (s *Server) serverMetadata(c *gin.Context) {
	s.publicJSON(c, http.StatusOK, gin.H{
		"issuer":                                         s.cfg.Issuer,
		"authorization_endpoint":                         s.cfg.Issuer + "/oauth/authorize",
		"token_endpoint":                                 s.cfg.Issuer + "/oauth/token",
		"registration_endpoint":                          s.cfg.Issuer + "/oauth/register",
		"revocation_endpoint":                            s.cfg.Issuer + "/oauth/revoke",
		"scopes_supported":                               []string{Scope},
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported":          []string{"none"},
		"revocation_endpoint_auth_methods_supported":     []string{"none"},
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": true,
	})
}

// publicJSON answers a document any origin may read (the OAuth endpoints take no cookies).
func (s *Server) publicJSON(c *gin.Context, status int, body any) {
	c.Header("Access-Control-Allow-Origin", "*")
	c.Header("Cache-Control", "no-store")
	c.JSON(status, body)
}

// oauthError answers an RFC 6749 §5.2 / RFC 7591 §3.2.2 error.
func (s *Server) oauthError(c *gin.Context, status int, code, desc string) {
	s.publicJSON(c, status, gin.H{"error": code, "error_description": desc})
}

// limit counts a request of the client's address in bucket; false means it answered 429.
func (s *Server) limit(c *gin.Context, bucket string, n int) bool {
	ip := events.MetadataFrom(c.Request.Context()).ClientIP
	if ip == "" {
		ip = c.ClientIP()
	}
	d, err := s.limiter.Take(c.Request.Context(), bucket+":"+clientip.Group(ip), n, s.cfg.Window, s.cfg.Now())
	if err != nil {
		s.logger.Error("oauth rate limit", "error", err)
		s.oauthError(c, http.StatusServiceUnavailable, "temporarily_unavailable", "Try again shortly.")
		return false
	}
	if !d.Allowed {
		c.Header("Retry-After", strconv.Itoa(int((d.RetryAfter+time.Second-1)/time.Second)))
		s.oauthError(c, http.StatusTooManyRequests, "rate_limited", "Too many requests from this client; retry after the Retry-After delay.")
		return false
	}
	return true
}

// MaxBody bounds the registration, token and revocation bodies.
const MaxBody = 16 << 10

type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
}

// register is RFC 7591 dynamic registration of a public client. Nothing is stored: the client
// ID is the signed registration.
func (s *Server) register(c *gin.Context) {
	if !s.limit(c, "oauth-register", s.cfg.RegisterLimit) {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, MaxBody+1))
	if err != nil || len(raw) > MaxBody {
		s.oauthError(c, http.StatusBadRequest, "invalid_client_metadata", "The registration must be a JSON object of at most 16 KiB.")
		return
	}
	var req registrationRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		s.oauthError(c, http.StatusBadRequest, "invalid_client_metadata", "The registration must be a JSON object.")
		return
	}
	if msg := validRegistration(&req); msg != "" {
		code := "invalid_client_metadata"
		if strings.HasPrefix(msg, "redirect") {
			code = "invalid_redirect_uri"
		}
		s.oauthError(c, http.StatusBadRequest, code, msg)
		return
	}
	now := s.cfg.Now().UTC()
	id := s.codec.clientID(registration{Name: req.ClientName, RedirectURIs: req.RedirectURIs, IssuedAt: now.Unix()})
	s.publicJSON(c, http.StatusCreated, gin.H{
		"client_id":                  id,
		"client_id_issued_at":        now.Unix(),
		"client_name":                req.ClientName,
		"redirect_uris":              req.RedirectURIs,
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      Scope,
	})
}

// validRegistration checks and completes a registration; it returns what is wrong, or "".
func validRegistration(r *registrationRequest) string {
	if len(r.RedirectURIs) == 0 || len(r.RedirectURIs) > 10 {
		return "redirect_uris: between 1 and 10 redirect URIs are required"
	}
	for _, raw := range r.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || len(raw) > 2000 || !SecureRedirect(u) {
			return "redirect_uris: each must be an absolute https URI, or http to a loopback address, without a fragment: " + strconv.Quote(raw)
		}
	}
	switch r.TokenEndpointAuthMethod {
	case "", "none":
	default:
		return "token_endpoint_auth_method: only public clients (none) can register"
	}
	for _, g := range r.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return "grant_types: only authorization_code and refresh_token are supported"
		}
	}
	for _, t := range r.ResponseTypes {
		if t != "code" {
			return "response_types: only code is supported"
		}
	}
	if r.Scope != "" && r.Scope != Scope {
		return "scope: the only scope is " + Scope
	}
	r.ClientName = strings.TrimSpace(r.ClientName)
	if len([]rune(r.ClientName)) > 100 || strings.ContainsFunc(r.ClientName, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "client_name: at most 100 printable characters"
	}
	if r.ClientName == "" {
		r.ClientName = "An unnamed application"
	}
	return ""
}

func (s *Server) token(c *gin.Context) {
	if !s.limit(c, "oauth-token", s.cfg.TokenLimit) {
		return
	}
	c.Header("Access-Control-Allow-Origin", "*")
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody)
	ctx := c.Request.Context()
	req, err := s.provider.NewAccessRequest(ctx, c.Request, &fosite.DefaultSession{})
	if err != nil {
		s.logFosite("token request refused", err)
		s.provider.WriteAccessError(ctx, c.Writer, req, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, req)
	if err != nil {
		s.logFosite("token request failed", err)
		s.provider.WriteAccessError(ctx, c.Writer, req, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, c.Writer, req, resp)
}

func (s *Server) revoke(c *gin.Context) {
	if !s.limit(c, "oauth-token", s.cfg.TokenLimit) {
		return
	}
	c.Header("Access-Control-Allow-Origin", "*")
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody)
	ctx := c.Request.Context()
	err := s.provider.NewRevocationRequest(ctx, c.Request)
	if err != nil {
		s.logFosite("revocation failed", err)
	}
	s.provider.WriteRevocationResponse(ctx, c.Writer, err)
}

// logFosite logs a refused OAuth request; server errors at error level.
func (s *Server) logFosite(msg string, err error) {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.CodeField < 500 {
		s.logger.Info(msg, "error", rfc.ErrorField, "hint", rfc.HintField)
		return
	}
	s.logger.Error(msg, "error", err)
}

// authorizeRequest validates the authorization request in r's query with fosite, and what this
// server adds before anyone signs in: PKCE with S256, the exact redirect URI, the resource. The
// bool says whether the error may go back to the request's redirect URI.
func (s *Server) authorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, bool, error) {
	// Only the query is the authorization request; the page's form fields are not part of it.
	q := &http.Request{Method: http.MethodGet, URL: r.URL, Header: http.Header{}, Form: r.URL.Query()}
	ar, err := s.provider.NewAuthorizeRequest(ctx, q.WithContext(ctx))
	if err != nil {
		return ar, ar != nil && ar.IsRedirectURIValid(), err
	}
	// fosite lets a loopback redirect URI change its port (RFC 8252 §7.3); registration here is
	// exact, so use is too, and a mismatch never redirects.
	if !slices.Contains(ar.GetClient().GetRedirectURIs(), ar.GetRedirectURI().String()) {
		return ar, false, fosite.ErrInvalidRequest.WithHint("The redirect_uri is not one the client registered.")
	}
	form := ar.GetRequestForm()
	switch {
	case form.Get("code_challenge") == "":
		return ar, true, fosite.ErrInvalidRequest.WithHint("A code_challenge (PKCE) is required.")
	case form.Get("code_challenge_method") != "S256":
		return ar, true, fosite.ErrInvalidRequest.WithHint("The code_challenge_method must be S256.")
	}
	if res := form.Get("resource"); res != "" && res != s.cfg.Resource && res != s.cfg.Issuer {
		return ar, true, fosite.ErrInvalidRequest.WithHint("The resource parameter names no resource of this server.")
	}
	if len(ar.GetRequestedScopes()) == 0 {
		ar.SetRequestedScopes(fosite.Arguments{Scope})
	}
	return ar, true, nil
}
