package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// TestMCPClientSignsInWithOAuth drives the official SDK's MCP client with its OAuth handler over
// real HTTP: a tool that needs an account answers 401 with the resource metadata, the client
// discovers both metadata documents, registers itself (RFC 7591), opens the sign-in page (here
// the test posts its forms, reading the code from the SMTP server), exchanges the code with
// PKCE, and retries with the access token: an ordinary API key of the signed-in account.
func TestMCPClientSignsInWithOAuth(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	cb := startCallback(t)
	const email = "sdk-agent@example.com"
	fetched := 0
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs: []string{cb.uri()}, ClientName: "SDK Agent", TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}},
		RedirectURL:         cb.uri(),
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(_ context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			fetched++
			u, err := url.Parse(args.URL)
			if err != nil {
				return nil, err
			}
			if u.Scheme+"://"+u.Host+u.Path != s.srv.URL+"/oauth/authorize" {
				t.Errorf("the client opens %s, want our authorization endpoint", args.URL)
			}
			q := signInThroughPage(t, s, mb, cb, u.RawQuery, email)
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "sdk-agent", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: s.srv.URL + "/mcp", OAuthHandler: handler, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("mcp connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })

	list, err := cs.ListTools(t.Context(), nil)
	if err != nil || len(list.Tools) == 0 {
		t.Fatalf("tools/list = %v, %v", list, err)
	}
	c := newCaller(t, cs, list.Tools, map[string]bool{})
	temp := c.call("publish_temporary_site", map[string]any{"files": []any{map[string]any{"path": "index.html", "content": "<h1>sdk</h1>"}}})
	if code, body, _ := s.site(temp["slug"].(string), "/"); code != http.StatusOK || body != "<h1>sdk</h1>" {
		t.Errorf("temporary site = %d %q", code, body)
	}
	if fetched != 0 {
		t.Errorf("signed in %d times before a tool needed an account", fetched)
	}

	// whoami needs an account: 401 → discovery → registration → sign-in page → token → retry.
	me := c.call("whoami", map[string]any{})
	if fetched != 1 {
		t.Fatalf("sign-ins = %d, want 1", fetched)
	}
	if user, _ := me["user"].(map[string]any); user == nil || user["email"] != email {
		t.Errorf("whoami = %v, want the user %s", me, email)
	}
	tok, err := handler.TokenSource(t.Context())
	if err != nil || tok == nil {
		t.Fatalf("token source: %v", err)
	}
	token, err := tok.Token()
	if err != nil {
		t.Fatal(err)
	}
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(token.AccessToken)); u.status != http.StatusOK || u.data(t)["email"] != email {
		t.Fatalf("the client's access token on GET /v1/user = %d %s", u.status, u.body)
	}

	// Publish a project into the account and read its history (a paid feature).
	if out, err := runCLI(t, s, "admin", "set-plan", email, "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(token.AccessToken)).data(t)["plan"].(map[string]any)["tier"] == "pro"
	})
	created := c.call("create_project", map[string]any{"title": "SDK Site", "files": []any{
		map[string]any{"path": "index.html", "content": "<h1>v1</h1>"}}})
	if _, body, _ := s.site(created["slug"].(string), "/"); body != "<h1>v1</h1>" {
		t.Errorf("created site serves %q", body)
	}
	hist := c.call("deployment_history", map[string]any{"projectId": created["projectId"]})["deployments"].([]any)
	if len(hist) != 1 {
		t.Errorf("history = %v", hist)
	}
}
