package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/cmd/litehost/connector"
	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/readapi"
)

// mcpMaxBody bounds one MCP request. A tool call carries the files it publishes inline (base64
// makes them a third larger) and the SDK reads the whole message into memory, so the connector
// takes less than the REST upload routes: larger sites go through the REST API.
const mcpMaxBody = 16 << 20

// protectedResourcePath is where the OAuth protected-resource metadata of /mcp is (RFC 9728); the
// OAuth part of the service serves it.
const protectedResourcePath = "/.well-known/oauth-protected-resource"

// registerAgents adds the MCP connector (POST /mcp) and the agent guide (GET /llms.txt) to e.
// The connector's tools call e itself, so they go through exactly the REST routes.
func (a *app) registerAgents(e *gin.Engine, auth *readapi.Authenticator) {
	conn, err := connector.New(connector.Config{
		API: e, Contract: a.contract, Version: version, MaxBody: mcpMaxBody,
		Logger: a.logger.With("component", "mcp"),
	})
	if err != nil {
		// The tools are cut out of the embedded contract: a failure is a programming error.
		panic("mcp connector: " + err.Error())
	}
	a.connector = conn
	e.POST("/mcp", a.mcpGate(conn, auth), gin.WrapH(conn))
	guide := llmsTxt(a.contract, a.publicBase(), conn)
	e.GET("/llms.txt", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "text/plain; charset=utf-8", guide)
	})
}

// mcpGate checks the caller's key before the MCP server sees the request. A key that is sent
// must be valid; without a key, a call of a tool that needs an account is refused too. Both are
// 401 with WWW-Authenticate naming the protected-resource metadata (RFC 9728 §5.1), which is how
// an MCP client learns to sign in; everything else (initialize, tools/list, publishing a
// temporary site) works without a key.
func (a *app) mcpGate(conn *connector.Connector, auth *readapi.Authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		// Tool results are per caller (and a claim token is shown once), as API answers are.
		c.Header("Cache-Control", "no-store")
		var err error
		if header := c.GetHeader("Authorization"); header != "" {
			_, err = auth.Authenticate(c.Request.Context(), header)
		} else {
			body, rerr := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, mcpMaxBody))
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(rerr, &tooLarge):
				err = &commands.HTTPError{Status: http.StatusRequestEntityTooLarge, Code: "BODY_TOO_LARGE",
					Message: fmt.Sprintf("an MCP request may be at most %d bytes; publish larger sites with the REST API", mcpMaxBody),
					Details: map[string]any{"max": mcpMaxBody}}
			case rerr != nil:
				err = &commands.HTTPError{Status: http.StatusBadRequest, Code: "INVALID_JSON", Message: "the request body could not be read"}
			case conn.NeedsAccount(body):
				err = readapi.AuthError{Code: readapi.CodeAPIKeyMissing}
			}
			c.Request.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err == nil {
			c.Next()
			return
		}
		e := classify(err)
		body := errorBody(err, e)
		if e.status == http.StatusUnauthorized {
			c.Header("WWW-Authenticate", fmt.Sprintf("Bearer resource_metadata=%q", a.publicBase()+protectedResourcePath))
			body["nextStep"] = "Sign in: your MCP client opens the Litehost sign-in page (OAuth) when it sees this answer. " +
				"Or send Authorization: Bearer <apiKey> with a key from POST /v1/auth/otp/verify."
		}
		c.AbortWithStatusJSON(e.status, body)
	}
}

// llmsTxt renders the agent guide from the contract, so it lists exactly the documented
// operations and cannot drift from them.
func llmsTxt(doc *openapi3.T, base string, conn *connector.Connector) []byte {
	var b strings.Builder
	b.WriteString("# Litehost\n\n")
	b.WriteString("> Static-site and file hosting for people and agents: publish HTML, assets or any files and get a URL.\n\n")
	fmt.Fprintf(&b, "API base URL: %s (JSON, every answer in one envelope). Full contract: %s/v1/openapi.json\n\n", base, base)
	b.WriteString("## Connect an agent (MCP)\n\n")
	fmt.Fprintf(&b, "MCP connector (Streamable HTTP): %s/mcp\n", base)
	b.WriteString("Add it by URL in your MCP client. Publishing a temporary site needs no account; any other tool\n")
	b.WriteString("makes the client open the sign-in page once (OAuth 2.1; the page e-mails a 6-digit code).\n")
	fmt.Fprintf(&b, "Tools: %s\n\n", strings.Join(conn.ToolNames(), ", "))
	b.WriteString("## Sign in (REST)\n\n")
	b.WriteString("1. POST /v1/auth/otp/request {\"email\": \"you@example.com\"} — a 6-digit code is e-mailed (valid 10 minutes).\n")
	b.WriteString("2. POST /v1/auth/otp/verify {\"email\": \"…\", \"code\": \"123456\"} — answers data.apiKey (lh_live_…) and a refresh token.\n")
	b.WriteString("3. Send Authorization: Bearer <apiKey> on every other call. Without an account, POST /v1/projects/temp publishes\n")
	b.WriteString("   a temporary site (15 minutes) that the user claims with its claimUrl.\n\n")
	b.WriteString("## Errors\n\n")
	b.WriteString("Success: {\"status\":\"success\",\"data\":{…}}. Error: {\"status\":\"error\",\"error\":\"message\",\"code\":\"MACHINE_CODE\",\"nextStep\":\"what to do\"}\n")
	b.WriteString("plus fields of the endpoint (fields, requiredTier, retryAfterSeconds, htmlPaths). Act on code; do what nextStep says.\n")
	b.WriteString("401 API_KEY_MISSING/INVALID/EXPIRED: sign in again. 403 FREE_TIER_RESTRICTED: needs a paid plan. 429 RATE_LIMITED: wait\n")
	b.WriteString("retryAfterSeconds. Writes take an Idempotency-Key header: retry with the same key and the write happens once.\n\n")
	b.WriteString("## Operations\n\n")
	for _, op := range operations(doc) {
		fmt.Fprintf(&b, "- %s %s — %s\n", op.method, op.path, op.summary)
	}
	return []byte(b.String())
}

// operation is one documented method and path.
type operation struct{ method, path, summary string }

// operations lists every operation of the contract, by path then method.
func operations(doc *openapi3.T) []operation {
	var out []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out = append(out, operation{method: method, path: path, summary: strings.TrimSpace(op.Summary)})
		}
	}
	slices.SortFunc(out, func(x, y operation) int {
		if c := strings.Compare(x.path, y.path); c != 0 {
			return c
		}
		return strings.Compare(x.method, y.method)
	})
	return out
}
