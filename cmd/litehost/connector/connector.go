// Package connector is Litehost's MCP server (the "connector" agents add by URL): a Model Context
// Protocol endpoint over Streamable HTTP whose tools are the REST API. A tool never has a second
// implementation of an operation: it builds the HTTP request the operation's route takes and
// serves it through the application's own HTTP handler, with the caller's Authorization header,
// then turns the answer's envelope into the tool result. Authentication, idempotency, quotas,
// rate limits, read-your-writes and the error table are therefore the API's, and so are the
// events, whose metadata the connector marks with the channel "mcp".
package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Config is what the connector needs from the composition root.
type Config struct {
	// API is the application's HTTP handler (the Gin engine of the REST routes).
	API http.Handler
	// Contract is docs/openapi.yaml: the tools' schemas are cut out of it.
	Contract *openapi3.T
	// Version is the server version reported to MCP clients.
	Version string
	// MaxBody bounds one MCP request (a tool call carries the files it publishes inline).
	MaxBody int64
	Logger  *slog.Logger
}

// Connector serves /mcp.
type Connector struct {
	cfg     Config
	tools   map[string]tool
	server  *mcp.Server
	handler http.Handler
}

// New builds the MCP server and registers every tool; an operation a tool names that the
// contract lacks is an error only for tools that must exist (see tool.optional).
func New(cfg Config) (*Connector, error) {
	c := &Connector{cfg: cfg, tools: map[string]tool{}}
	c.server = mcp.NewServer(&mcp.Implementation{Name: "litehost", Title: "Litehost", Version: cfg.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: cfg.Logger})
	for _, t := range catalogue() {
		if err := c.add(t); err != nil {
			return nil, fmt.Errorf("tool %s: %w", t.name, err)
		}
	}
	c.handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return c.server }, &mcp.StreamableHTTPOptions{
		// Stateless: every POST stands alone, so any instance behind the load balancer serves any
		// call, and no session lives in memory. No tool asks the client anything back.
		Stateless: true,
		// One JSON answer per call: the tools do not stream.
		JSONResponse: true,
		// The SDK refuses loopback connections with a non-loopback Host (DNS rebinding of local
		// servers). Litehost is a public server, often behind a proxy on loopback, that
		// authenticates by bearer header only: the check would refuse every proxied call.
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        cfg.MaxBody,
		Logger:                     cfg.Logger,
	})
	return c, nil
}

// ServeHTTP serves the Streamable HTTP transport. The request's client address and headers ride
// in the context to the tools, which pass them on to the API (rate limits are per client).
func (c *Connector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(r.Context(), callerKey{}, caller{remoteAddr: r.RemoteAddr, header: r.Header.Clone()})
	c.handler.ServeHTTP(w, r.WithContext(ctx))
}

// ToolNames lists the tools, sorted.
func (c *Connector) ToolNames() []string {
	names := make([]string, 0, len(c.tools))
	for n := range c.tools {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Route returns the API operation ("METHOD /path" as in the contract) a tool calls, and whether
// the tool exists. whoami answers "GET /v1/user".
func (c *Connector) Route(name string) (string, bool) {
	t, ok := c.tools[name]
	return t.method + " " + t.path, ok
}

// NeedsAccount reports whether an MCP request body is a call of a tool that needs an account.
// The /mcp route answers such a call without a key 401 with the protected-resource metadata, so
// the client signs in (OAuth) there; everything else, including publishing a temporary site,
// works without one.
func (c *Connector) NeedsAccount(body []byte) bool {
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Method != "tools/call" {
		return false
	}
	t, ok := c.tools[msg.Params.Name]
	return ok && !t.anonymous
}

type callerKey struct{}

// caller is what the tools forward of the MCP request to the API.
type caller struct {
	remoteAddr string
	header     http.Header
}

const instructions = `Litehost hosts static sites and files. Publish without an account with publish_temporary_site
(the site lives 15 minutes unless claimed; give the user its claimUrl). Everything else needs the user
to sign in once (the connector asks for it). Every failed call returns code, error and nextStep: do
what nextStep says. Deleting needs confirm: true, which you send only after the user agreed.`
