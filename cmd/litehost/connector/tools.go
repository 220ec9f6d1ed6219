package connector

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/litehost/litehost/events"
)

// tool is one MCP tool and the API operation it calls.
type tool struct {
	name, title, description string
	method, path             string // as in docs/openapi.yaml
	anonymous                bool   // works without an account
	upload                   bool   // multipart: files inline in the call become files parts
	confirm                  bool   // destructive: refused without confirm: true
	listKey                  string // the answer's data is an array: the output names it listKey
	readOnly                 bool
	// optional: the operation may be missing from this build's contract (it comes with another
	// part of the service); the tool then calls the route anyway and returns the API's answer.
	optional bool
}

// catalogue is every tool. Descriptions tell an agent when to use the tool and what comes back;
// the operation's summary from the contract is appended.
func catalogue() []tool {
	const files = " Files go inline: files: [{path, content}] for text, [{path, contentBase64}] for binary; a single .zip is unpacked (zipIndexHtmlPath picks the homepage when it holds several HTML files)."
	return []tool{
		{name: "publish_temporary_site", title: "Publish without signing in", method: "POST", path: "/v1/projects/temp", anonymous: true, upload: true,
			description: "Publish files as a temporary site without an account: it is live at url for 15 minutes. Show the user url and claimUrl (claiming keeps the site in their account; or call claim_project after signing in)." + files},
		{name: "create_project", title: "Create a project", method: "POST", path: "/v1/projects", upload: true,
			description: "Create a project in the signed-in account from files; its first version is live at url at once." + files},
		{name: "push_version", title: "Push a new version", method: "PUT", path: "/v1/projects/{projectId}", upload: true,
			description: "Replace a project's content with a new version (the old ones stay in deployment_history for rollback)." + files},
		{name: "claim_project", title: "Claim a temporary project", method: "POST", path: "/v1/projects/claim/{claimToken}",
			description: "Move a temporary project (from publish_temporary_site) into the signed-in account, with its claimToken."},
		{name: "list_projects", title: "List projects", method: "GET", path: "/v1/projects", readOnly: true,
			description: "List the account's projects, newest first; a page shorter than limit is the last."},
		{name: "get_project", title: "Get a project", method: "GET", path: "/v1/projects/{projectId}", readOnly: true,
			description: "Read one project: url, settings, active deployment, size."},
		{name: "deployment_history", title: "Deployment history", method: "GET", path: "/v1/projects/{projectId}/status", listKey: "deployments", readOnly: true,
			description: "List a project's deployments, newest first; exactly one is active. Use a deploymentId with rollback."},
		{name: "rollback", title: "Roll back", method: "POST", path: "/v1/projects/{projectId}/rollback",
			description: "Serve an earlier deployment's files again, as a new version (history stays append-only)."},
		{name: "link_opens", title: "Link opens", method: "GET", path: "/v1/projects/{projectId}/analytics", readOnly: true, optional: true,
			description: "How often the project's link was opened (people, not bots or link previews), recently and in total, and from where. Paid plans."},
		{name: "update_project_settings", title: "Update project settings", method: "PATCH", path: "/v1/projects/{projectId}",
			description: "Change a project's title, slug (its address), access (public, password, private), password, expiry, indexing, workspace or domain. Send only what changes; null clears a nullable field."},
		{name: "archive_project", title: "Archive a project", method: "POST", path: "/v1/projects/{projectId}/archive",
			description: "Take a project offline without deleting it (unarchive_project brings it back)."},
		{name: "unarchive_project", title: "Unarchive a project", method: "POST", path: "/v1/projects/{projectId}/unarchive",
			description: "Bring an archived project back online (counts against the plan's quota again)."},
		{name: "delete_project", title: "Delete a project", method: "DELETE", path: "/v1/projects/{projectId}", confirm: true,
			description: "Delete a project and its history for good. Ask the user first, then call with confirm: true; without it the call is refused."},
		{name: "list_workspaces", title: "List workspaces", method: "GET", path: "/v1/workspaces", readOnly: true,
			description: "List the account's workspaces (groups of projects), in creation order."},
		{name: "create_workspace", title: "Create a workspace", method: "POST", path: "/v1/workspaces",
			description: "Create a workspace with a name; put projects in it with update_project_settings (workspaceId)."},
		{name: "rename_workspace", title: "Rename a workspace", method: "PATCH", path: "/v1/workspaces/{workspaceId}",
			description: "Give a workspace a new name."},
		{name: "delete_workspace", title: "Delete a workspace", method: "DELETE", path: "/v1/workspaces/{workspaceId}", confirm: true,
			description: "Delete a workspace; its projects move to the personal scope. Ask the user first, then call with confirm: true."},
		{name: "list_domains", title: "List domains", method: "GET", path: "/v1/domains", readOnly: true,
			description: "List the account's custom domains and whether each is verified."},
		{name: "get_domain", title: "Get a domain", method: "GET", path: "/v1/domains/{domainId}", readOnly: true,
			description: "Read one custom domain with the projects assigned to it."},
		{name: "add_domain", title: "Add a domain", method: "POST", path: "/v1/domains",
			description: "Add a custom domain; the answer holds the DNS TXT record the user must create before verify_domain."},
		{name: "verify_domain", title: "Verify a domain", method: "POST", path: "/v1/domains/{domainId}/verify",
			description: "Look up the domain's TXT record and activate it; then assign projects with update_project_settings (domainId)."},
		{name: "delete_domain", title: "Delete a domain", method: "DELETE", path: "/v1/domains/{domainId}", confirm: true,
			description: "Remove a custom domain no project uses. Ask the user first, then call with confirm: true."},
		{name: "whoami", title: "Who am I and my quota", method: "GET", path: "/v1/user", readOnly: true,
			description: "The signed-in account (plan, limits, quota used) and the key in use (session, expiry)."},
	}
}

// fileSchema is an inline file of an upload tool.
var fileSchema = map[string]any{
	"type":                 "object",
	"additionalProperties": false,
	"required":             []any{"path"},
	"properties": map[string]any{
		"path":          map[string]any{"type": "string", "minLength": 1, "description": "File name, with folders: index.html, css/site.css."},
		"content":       map[string]any{"type": "string", "description": "The file's text (UTF-8)."},
		"contentBase64": map[string]any{"type": "string", "description": "The file's bytes in standard base64, for binary files (images, PDFs, ZIPs)."},
	},
}

// argumentHints describe arguments the contract leaves undescribed: where an agent finds the value.
var argumentHints = map[string]string{
	"projectId":    "The project's id: projectId from create_project, publish_temporary_site or list_projects (id).",
	"workspaceId":  "A workspace's id, from list_workspaces or create_workspace.",
	"domainId":     "A custom domain's id, from list_domains or add_domain.",
	"claimToken":   "The claimToken publish_temporary_site answered.",
	"deploymentId": "A deploymentId from deployment_history.",
	"title":        "The project's name, shown in lists; the address (slug) is made from it unless slug is given.",
	"slug":         "The address: <slug>.<sites domain>. Lowercase letters, digits and hyphens.",
	"name":         "The workspace's name.",
	"domain":       "The host name, e.g. example.com.",
}

// add registers t with schemas taken from the contract.
func (c *Connector) add(t tool) error {
	in, out, summary, err := c.schemas(t)
	if err != nil {
		return err
	}
	desc := t.description
	if summary != "" {
		desc += " (API: " + t.method + " " + t.path + " — " + summary + ".)"
	}
	destructive := t.confirm
	mt := &mcp.Tool{
		Name: t.name, Title: t.title, Description: desc, InputSchema: in, OutputSchema: out,
		Annotations: &mcp.ToolAnnotations{Title: t.title, ReadOnlyHint: t.readOnly, DestructiveHint: &destructive,
			IdempotentHint: t.readOnly || t.method == http.MethodDelete},
	}
	inSchema, err := resolve(in)
	if err != nil {
		return fmt.Errorf("input schema: %w", err)
	}
	outSchema, err := resolve(out)
	if err != nil {
		return fmt.Errorf("output schema: %w", err)
	}
	c.tools[t.name] = t
	// The untyped AddTool: the connector validates arguments itself, so that a wrong argument is
	// a tool error with a code and nextStep like every other failure, not the SDK's bare text.
	c.server.AddTool(mt, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := map[string]any{}
		if raw := req.Params.Arguments; len(raw) > 0 && string(raw) != "null" {
			if err := json.Unmarshal(raw, &args); err != nil {
				return toolError(http.StatusBadRequest, map[string]any{"code": "INVALID_JSON",
					"error": "arguments must be a JSON object", "nextStep": "Send the arguments as a JSON object."}), nil
			}
		}
		if err := inSchema.Validate(args); err != nil {
			return toolError(http.StatusUnprocessableEntity, map[string]any{"code": "VALIDATION_FAILED",
				"error": "The arguments do not match the tool's input schema.", "fields": map[string]any{"arguments": err.Error()},
				"nextStep": "Fix the arguments as the input schema of " + t.name + " says and call again."}), nil
		}
		var (
			res *mcp.CallToolResult
			got any
		)
		if t.name == "whoami" {
			res, got, err = c.whoami(ctx, req)
		} else {
			res, got, err = c.call(ctx, req, t, args)
		}
		if err != nil || res != nil {
			return res, err
		}
		raw, err := json.Marshal(got)
		if err != nil {
			return nil, fmt.Errorf("encode output: %w", err)
		}
		var generic any
		_ = json.Unmarshal(raw, &generic)
		if err := outSchema.Validate(generic); err != nil {
			// The API answered what its contract does not say: a bug of ours, not the caller's.
			c.cfg.Logger.Error("tool output breaks its schema", "tool", t.name, "error", err)
			return toolError(http.StatusInternalServerError, map[string]any{"code": "SERVER_ERROR",
				"error": "Something went wrong on our side.", "nextStep": "Retry the call; if it keeps failing, try again later."}), nil
		}
		return &mcp.CallToolResult{StructuredContent: json.RawMessage(raw), Content: []mcp.Content{&mcp.TextContent{Text: string(raw)}}}, nil
	})
	return nil
}

// resolve compiles a schema value for validation.
func resolve(schema map[string]any) (*jsonschema.Resolved, error) {
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, err
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return s.Resolve(&jsonschema.ResolveOptions{ValidateDefaults: true})
}

// schemas builds t's input and output schemas from its operation in the contract.
func (c *Connector) schemas(t tool) (in, out map[string]any, summary string, err error) {
	doc := c.cfg.Contract
	props := map[string]any{}
	var required []any
	item := doc.Paths.Find(t.path)
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(t.method)
	}
	if op == nil {
		if !t.optional {
			return nil, nil, "", fmt.Errorf("%s %s is not in the contract", t.method, t.path)
		}
		// Until the operation is documented, its path parameters are all the tool knows.
		for _, seg := range strings.Split(t.path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				props[name] = map[string]any{"type": "string"}
				required = append(required, name)
			}
		}
		out = map[string]any{"type": "object"}
	} else {
		summary = op.Summary
		for _, p := range parameters(item, op) {
			s := map[string]any{"type": "string"}
			if p.Schema != nil {
				if s, err = inline(doc, p.Schema); err != nil {
					return nil, nil, "", err
				}
			}
			if p.Description != "" {
				s["description"] = p.Description
			}
			props[p.Name] = s
			if p.Required {
				required = append(required, p.Name)
			}
		}
		ct := "application/json"
		if t.upload {
			ct = "multipart/form-data"
		}
		body, err := requestBodySchema(doc, op, ct)
		if err != nil {
			return nil, nil, "", err
		}
		if body != nil {
			bp, _ := body["properties"].(map[string]any)
			for k, v := range bp {
				props[k] = v
			}
			if r, ok := body["required"].([]any); ok {
				required = append(required, r...)
			}
		}
		if t.upload {
			props["files"] = map[string]any{"type": "array", "minItems": 1, "items": fileSchema,
				"description": "The files to publish, inline."}
			required = append(required, "files")
			// Multipart fields are strings on the wire; an agent sends a boolean.
			if _, ok := props["asFileBundle"]; ok {
				props["asFileBundle"] = map[string]any{"type": "boolean", "description": "Treat a .zip as a file bundle, never as a site."}
			}
		}
		data, err := successData(doc, op)
		if err != nil {
			return nil, nil, "", err
		}
		switch {
		case data == nil:
			out = map[string]any{"type": "object"}
		case t.listKey != "":
			out = map[string]any{"type": "object", "additionalProperties": false, "required": []any{t.listKey},
				"properties": map[string]any{t.listKey: data}}
		default:
			out = data
		}
	}
	if t.name == "whoami" {
		if out, err = c.whoamiSchema(); err != nil {
			return nil, nil, "", err
		}
	}
	if t.confirm {
		props["confirm"] = map[string]any{"type": "boolean", "description": "Must be true: the user agreed to this deletion."}
		required = append(required, "confirm")
	}
	if !t.readOnly {
		props["idempotencyKey"] = map[string]any{"type": "string", "maxLength": 255,
			"description": "Optional. Send the same key when retrying the same call, so it happens once."}
	}
	for k, d := range argumentHints {
		if p, ok := props[k].(map[string]any); ok && p["description"] == nil {
			p["description"] = d
		}
	}
	in = map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		in["required"] = dedupe(required)
	}
	return in, out, summary, nil
}

func dedupe(xs []any) []any {
	var out []any
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// apiAnswer is an API response.
type apiAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// call builds the request of t's route from args and serves it through the API.
func (c *Connector) call(ctx context.Context, req *mcp.CallToolRequest, t tool, args map[string]any) (*mcp.CallToolResult, any, error) {
	args = maps.Clone(args)
	if t.confirm {
		ok, _ := args["confirm"].(bool)
		if !ok {
			return toolError(http.StatusBadRequest, map[string]any{"code": "CONFIRMATION_REQUIRED",
				"error":    t.title + " cannot be undone, and confirm was not true.",
				"nextStep": "Ask the user to confirm, then call " + t.name + " again with confirm: true."}), nil, nil
		}
		delete(args, "confirm")
	}
	idemKey, _ := args["idempotencyKey"].(string)
	delete(args, "idempotencyKey")

	path, query := t.path, url.Values{}
	for k, v := range args {
		ph := "{" + k + "}"
		if strings.Contains(path, ph) {
			path = strings.ReplaceAll(path, ph, url.PathEscape(fmt.Sprint(v)))
			delete(args, k)
		}
	}
	if t.method == http.MethodGet {
		for k, v := range args {
			query.Set(k, scalar(v))
		}
		args = nil
	}
	var (
		body  []byte
		ctype string
		err   error
	)
	switch {
	case t.upload:
		if body, ctype, err = multipartOf(args); err != nil {
			return toolError(http.StatusUnprocessableEntity, map[string]any{"code": "VALIDATION_FAILED",
				"error": err.Error(), "fields": map[string]any{"files": err.Error()},
				"nextStep": "Send each file as {path, content} or {path, contentBase64} with valid standard base64."}), nil, nil
		}
	case t.method == http.MethodGet:
	case len(args) > 0 || t.method == http.MethodPatch:
		if body, err = json.Marshal(args); err != nil {
			return nil, nil, fmt.Errorf("encode body: %w", err)
		}
		ctype = "application/json"
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	ans, err := c.serve(ctx, req, t.method, path, body, ctype, idemKey)
	if err != nil {
		return nil, nil, err
	}
	return c.result(t, ans)
}

// scalar renders a query or form value as the API reads it.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// multipartOf encodes an upload tool's arguments as the multipart body of the upload routes.
func multipartOf(args map[string]any) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	files, _ := args["files"].([]any)
	for k, v := range args {
		if k == "files" || v == nil {
			continue
		}
		if err := w.WriteField(k, scalar(v)); err != nil {
			return nil, "", err
		}
	}
	for i, f := range files {
		m, _ := f.(map[string]any)
		name, _ := m["path"].(string)
		var content []byte
		switch {
		case m["contentBase64"] != nil:
			s, _ := m["contentBase64"].(string)
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, "", fmt.Errorf("files[%d] (%s): contentBase64 is not valid base64", i, name)
			}
			content = b
		default:
			s, _ := m["content"].(string)
			content = []byte(s)
		}
		part, err := w.CreateFormFile("files", name)
		if err != nil {
			return nil, "", err
		}
		if _, err := part.Write(content); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// forwarded are the caller's headers a tool's API request keeps: its credentials, and what the
// API reads the client's address and identity from (through the trusted proxies).
var forwarded = []string{"Authorization", "User-Agent", "X-Forwarded-For", "X-Real-Ip", "Forwarded"}

// serve runs one API request through the application's handler.
func (c *Connector) serve(ctx context.Context, req *mcp.CallToolRequest, method, path string, body []byte, ctype, idemKey string) (apiAnswer, error) {
	r, err := http.NewRequestWithContext(events.WithChannel(ctx, events.ChannelMCP), method, path, bytes.NewReader(body))
	if err != nil {
		return apiAnswer{}, fmt.Errorf("build request: %w", err)
	}
	src := http.Header{}
	if cl, ok := ctx.Value(callerKey{}).(caller); ok {
		src = cl.header
		r.RemoteAddr = cl.remoteAddr
	} else if req != nil && req.Extra != nil && req.Extra.Header != nil {
		src = req.Extra.Header
	}
	for _, h := range forwarded {
		if v := src.Values(h); len(v) > 0 {
			r.Header[http.CanonicalHeaderKey(h)] = slices.Clone(v)
		}
	}
	// The tool's API request belongs to the MCP request: same correlation.
	if md := events.MetadataFrom(ctx); md.CorrelationID != "" {
		r.Header.Set("X-Correlation-ID", md.CorrelationID)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if idemKey != "" {
		r.Header.Set("Idempotency-Key", idemKey)
	}
	rec := httptest.NewRecorder()
	c.cfg.API.ServeHTTP(rec, r)
	ans := apiAnswer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(ans.raw, &ans.body); err != nil {
		ans.body = map[string]any{"status": "error", "code": "SERVER_ERROR",
			"error": "The API answered something that is not its JSON envelope.", "nextStep": "Retry later."}
		if ans.status < 400 {
			ans.status = http.StatusBadGateway
		}
	}
	return ans, nil
}

// result maps an API answer to the tool result: data as structured output, or a tool error with
// the error envelope (code, error, nextStep and the endpoint's extra fields).
func (c *Connector) result(t tool, ans apiAnswer) (*mcp.CallToolResult, any, error) {
	if ans.status >= 400 || ans.body["status"] != "success" {
		return toolError(ans.status, ans.body), nil, nil
	}
	data := ans.body["data"]
	if t.listKey != "" {
		return nil, map[string]any{t.listKey: data}, nil
	}
	if data == nil {
		data = map[string]any{}
	}
	return nil, data, nil
}

// toolError is a failed call: IsError, with the API's envelope as structured content and a
// text an agent can act on.
func toolError(status int, envelope map[string]any) *mcp.CallToolResult {
	sc := maps.Clone(envelope)
	delete(sc, "status")
	sc["httpStatus"] = status
	code, _ := sc["code"].(string)
	msg, _ := sc["error"].(string)
	text := code + ": " + msg
	if next, _ := sc["nextStep"].(string); next != "" {
		text += " Next step: " + next
	}
	return &mcp.CallToolResult{IsError: true, StructuredContent: sc, Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// whoami combines GET /v1/user and GET /v1/auth/session.
func (c *Connector) whoami(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, any, error) {
	out := map[string]any{}
	for _, part := range []struct{ key, path string }{{"user", "/v1/user"}, {"session", "/v1/auth/session"}} {
		ans, err := c.serve(ctx, req, http.MethodGet, part.path, nil, "", "")
		if err != nil {
			return nil, nil, err
		}
		if ans.status >= 400 || ans.body["status"] != "success" {
			return toolError(ans.status, ans.body), nil, nil
		}
		out[part.key] = ans.body["data"]
	}
	return nil, out, nil
}

func (c *Connector) whoamiSchema() (map[string]any, error) {
	props := map[string]any{}
	for key, path := range map[string]string{"user": "/v1/user", "session": "/v1/auth/session"} {
		item := c.cfg.Contract.Paths.Find(path)
		if item == nil || item.Get == nil {
			return nil, fmt.Errorf("GET %s is not in the contract", path)
		}
		data, err := successData(c.cfg.Contract, item.Get)
		if err != nil {
			return nil, err
		}
		props[key] = data
	}
	return map[string]any{"type": "object", "additionalProperties": false, "required": []any{"user", "session"}, "properties": props}, nil
}
