package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/litehost/litehost/events"
)

// bearerTransport adds an API key to every request of the MCP client.
type bearerTransport struct{ key string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.key != "" {
		r.Header.Set("Authorization", "Bearer "+b.key)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// mcpSession connects an MCP client of the official SDK to the instance's /mcp, with key (or
// none) on every request.
func mcpSession(t *testing.T, s *testServer, key string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "litehost-test", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: s.srv.URL + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{key}}, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("mcp connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// mcpCaller calls tools and checks every successful structured output against the tool's own
// output schema, as a client would; it records which tools answered successfully.
type mcpCaller struct {
	t       *testing.T
	cs      *mcp.ClientSession
	schemas map[string]*jsonschema.Schema
	ok      map[string]bool
}

func newCaller(t *testing.T, cs *mcp.ClientSession, tools []*mcp.Tool, ok map[string]bool) *mcpCaller {
	t.Helper()
	c := &mcpCaller{t: t, cs: cs, schemas: map[string]*jsonschema.Schema{}, ok: ok}
	comp := jsonschema.NewCompiler()
	for _, tool := range tools {
		raw, err := json.Marshal(tool.OutputSchema)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		url := "mem://" + tool.Name + ".json"
		if err := comp.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		if c.schemas[tool.Name], err = comp.Compile(url); err != nil {
			t.Fatalf("%s: output schema does not compile: %v", tool.Name, err)
		}
	}
	return c
}

// call runs a tool that must succeed and returns its structured output.
func (c *mcpCaller) call(name string, args map[string]any) map[string]any {
	c.t.Helper()
	res, err := c.cs.CallTool(c.t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	out, _ := res.StructuredContent.(map[string]any)
	if res.IsError {
		c.t.Fatalf("%s failed: %v", name, out)
	}
	if s := c.schemas[name]; s == nil {
		c.t.Errorf("%s: no output schema", name)
	} else if err := s.Validate(jsonValue(c.t, res.StructuredContent)); err != nil {
		c.t.Errorf("%s: output breaks its output schema: %v\n%v", name, err, out)
	}
	c.ok[name] = true
	return out
}

// fail runs a tool that must fail with a tool error and returns its structured content.
func (c *mcpCaller) fail(name string, args map[string]any) map[string]any {
	c.t.Helper()
	res, err := c.cs.CallTool(c.t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	out, _ := res.StructuredContent.(map[string]any)
	if !res.IsError {
		c.t.Fatalf("%s succeeded, want a tool error: %v", name, out)
	}
	if out["code"] == nil || out["error"] == nil {
		c.t.Errorf("%s: tool error without the API's code and error: %v", name, out)
	}
	return out
}

// jsonValue round-trips v through JSON into the generic form the validator takes.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMCPConnector(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	succeeded := map[string]bool{}

	// Without a key: the tools are listed, each with input and output schemas.
	anon := mcpSession(t, s, "")
	list, err := anon.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
		if tool.InputSchema == nil || tool.OutputSchema == nil || tool.Description == "" {
			t.Errorf("%s: input schema %v, output schema %v, description %q", tool.Name, tool.InputSchema != nil, tool.OutputSchema != nil, tool.Description)
		}
	}
	slices.Sort(names)
	if want := s.app.connector.ToolNames(); !slices.Equal(names, want) || len(names) < 20 {
		t.Fatalf("tools = %v, want %v", names, want)
	}
	ac := newCaller(t, anon, list.Tools, succeeded)

	// Publishing without signing in: a temporary site, served by its host name.
	temp := ac.call("publish_temporary_site", map[string]any{"files": []any{
		map[string]any{"path": "index.html", "content": "<h1>from an agent</h1>"},
		map[string]any{"path": "logo.png", "contentBase64": "iVBORw0KGgo="},
	}})
	if code, body, _ := s.site(temp["slug"].(string), "/"); code != http.StatusOK || body != "<h1>from an agent</h1>" {
		t.Errorf("temporary site = %d %q", code, body)
	}
	if code, body, _ := s.site(temp["slug"].(string), "/logo.png"); code != http.StatusOK || body != "\x89PNG\r\n\x1a\n" {
		t.Errorf("binary file = %d %q", code, body)
	}
	if e := ac.fail("publish_temporary_site", map[string]any{"files": []any{map[string]any{"path": "a.bin", "contentBase64": "%%%"}}}); e["code"] != "VALIDATION_FAILED" {
		t.Errorf("bad base64 = %v", e)
	}

	// A tool that needs an account, without a key: 401 with the protected-resource metadata,
	// which is where an MCP client starts its sign-in.
	if _, err := anon.CallTool(t.Context(), &mcp.CallToolParams{Name: "list_projects", Arguments: map[string]any{}}); err == nil {
		t.Errorf("list_projects without a key succeeded")
	}
	wantChallenge := fmt.Sprintf("Bearer resource_metadata=%q", s.srv.URL+"/.well-known/oauth-protected-resource")
	for _, key := range []string{"", "lh_live_" + strings.Repeat("0", 64)} {
		r := s.do(http.MethodPost, "/mcp", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
			"params": map[string]any{"name": "whoami", "arguments": map[string]any{}}}, bearer(key))
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != wantChallenge || r.json(t)["nextStep"] == nil ||
			r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("key %q: %d %q %s", key, r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
	}

	// Signed in (the OTP flow's key), on a paid plan.
	signedIn := signIn(t, s, mb, "agent@example.com")
	key := signedIn["apiKey"].(string)
	if out, err := runCLI(t, s, "admin", "set-plan", "agent@example.com", "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "pro"
	})
	cs := mcpSession(t, s, key)
	c := newCaller(t, cs, list.Tools, succeeded)

	me := c.call("whoami", map[string]any{})
	accountID := me["session"].(map[string]any)["accountId"].(string)
	created := c.call("create_project", map[string]any{"title": "Agent Site", "files": []any{
		map[string]any{"path": "index.html", "content": "<h1>v1</h1>"}}})
	id, slug := created["projectId"].(string), created["slug"].(string)
	if _, body, _ := s.site(slug, "/"); body != "<h1>v1</h1>" {
		t.Errorf("created site serves %q", body)
	}
	c.call("push_version", map[string]any{"projectId": id, "files": []any{map[string]any{"path": "index.html", "content": "<h1>v2</h1>"}}})
	if _, body, _ := s.site(slug, "/"); body != "<h1>v2</h1>" {
		t.Errorf("pushed site serves %q", body)
	}
	hist := c.call("deployment_history", map[string]any{"projectId": id})["deployments"].([]any)
	if len(hist) != 2 || hist[0].(map[string]any)["version"] != float64(2) {
		t.Fatalf("history = %v", hist)
	}
	c.call("rollback", map[string]any{"projectId": id, "deploymentId": hist[1].(map[string]any)["deploymentId"]})
	if _, body, _ := s.site(slug, "/"); body != "<h1>v1</h1>" {
		t.Errorf("rolled back site serves %q", body)
	}
	c.call("get_project", map[string]any{"projectId": id})
	if got := c.call("list_projects", map[string]any{"limit": 10})["projects"].([]any); len(got) != 1 {
		t.Errorf("projects = %v", got)
	}
	c.call("update_project_settings", map[string]any{"projectId": id, "title": "Renamed", "noIndex": true})
	c.call("archive_project", map[string]any{"projectId": id})
	c.call("unarchive_project", map[string]any{"projectId": id})
	c.call("claim_project", map[string]any{"claimToken": temp["claimToken"]})

	ws := c.call("create_workspace", map[string]any{"name": "Agents"})["id"].(string)
	c.call("list_workspaces", map[string]any{})
	c.call("rename_workspace", map[string]any{"workspaceId": ws, "name": "Robots"})
	c.call("delete_workspace", map[string]any{"workspaceId": ws, "confirm": true})

	dom := c.call("add_domain", map[string]any{"domain": "agents.example.com"})
	domID := dom["id"].(string)
	c.call("list_domains", map[string]any{})
	c.call("get_domain", map[string]any{"domainId": domID})
	if e := c.fail("verify_domain", map[string]any{"domainId": domID}); e["code"] != "DOMAIN_VERIFICATION_FAILED" {
		t.Errorf("verify without the TXT record = %v", e)
	}
	c.call("delete_domain", map[string]any{"domainId": domID, "confirm": true})

	// Another tenant's key over MCP: A's project is not found, as over REST.
	s.advance(61 * time.Second)
	other := newCaller(t, mcpSession(t, s, signIn(t, s, mb, "other@example.com")["apiKey"].(string)), list.Tools, map[string]bool{})
	for _, call := range []struct {
		name string
		args map[string]any
	}{
		{"get_project", map[string]any{"projectId": id}},
		{"deployment_history", map[string]any{"projectId": id}},
		{"push_version", map[string]any{"projectId": id, "files": []any{map[string]any{"path": "index.html", "content": "pwned"}}}},
		{"delete_project", map[string]any{"projectId": id, "confirm": true}},
	} {
		if e := other.fail(call.name, call.args); e["code"] != "NOT_FOUND" && e["code"] != "FREE_TIER_RESTRICTED" {
			t.Errorf("another tenant's %s = %v", call.name, e)
		}
	}

	// Tool errors carry the API's code and nextStep.
	if e := c.fail("delete_project", map[string]any{"projectId": id, "confirm": false}); e["code"] != "CONFIRMATION_REQUIRED" || e["nextStep"] == nil {
		t.Errorf("delete without confirm = %v", e)
	}
	if e := c.fail("get_project", map[string]any{"projectId": "00000000-0000-0000-0000-000000000000"}); e["code"] != "NOT_FOUND" || e["httpStatus"] != float64(404) {
		t.Errorf("unknown project = %v", e)
	}
	for _, args := range []map[string]any{{}, {"projectId": 7}, {"projectId": id, "color": "red"}} {
		if e := c.fail("get_project", args); e["code"] != "VALIDATION_FAILED" || e["nextStep"] == nil || e["fields"] == nil {
			t.Errorf("get_project %v = %v", args, e)
		}
	}
	if e := c.fail("create_project", map[string]any{"title": "", "files": []any{map[string]any{"path": "index.html", "content": "x"}}}); e["code"] != "VALIDATION_FAILED" || e["nextStep"] == nil {
		t.Errorf("blank title = %v", e)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_project", Arguments: map[string]any{"projectId": id}}); err != nil {
		t.Logf("delete without confirm argument: %v", err)
	}
	if r := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("a refused delete deleted: %d", r.status)
	}
	// Link opens come with the analytics part of the service; until then the tool returns the
	// API's answer for the route.
	analytics := s.app.contract.Paths.Find("/v1/projects/{projectId}/analytics") != nil
	if analytics {
		c.call("link_opens", map[string]any{"projectId": id})
	} else if e := c.fail("link_opens", map[string]any{"projectId": id}); e["code"] != "NOT_FOUND" {
		t.Errorf("link opens before the analytics route = %v", e)
	}
	c.call("delete_project", map[string]any{"projectId": id, "confirm": true})

	for _, name := range names {
		if !succeeded[name] && name != "verify_domain" && !(name == "link_opens" && !analytics) {
			t.Errorf("%s was never called successfully: its output schema is unchecked", name)
		}
	}

	// The events of the MCP calls name the account and the channel; REST calls the channel api.
	checkChannel(t, s, "project-"+id, events.AccountActor(accountID), events.ChannelMCP)
	rest := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "REST"}, []upload{{"index.html", []byte("x")}}, bearer(key))
	checkChannel(t, s, "project-"+rest.data(t)["projectId"].(string), events.AccountActor(accountID), events.ChannelAPI)
	checkChannel(t, s, "project-"+temp["projectId"].(string), "", events.ChannelMCP)
	// The tools' API requests keep the MCP caller's address (rate limits are per client).
	recs, err := s.app.store.ReadStream(t.Context(), "project-"+temp["projectId"].(string), 0, 10)
	if err != nil || len(recs) == 0 {
		t.Fatalf("temporary project stream: %v", err)
	}
	if md, _ := events.ParseMetadata(recs[0].Metadata); md.ClientNetwork != "127.0.0.0/24" || md.Actor != events.ActorAnonymous {
		t.Errorf("temporary project metadata = %+v", md)
	}
}

// checkChannel checks every event of stream has the channel (and the actor, unless empty).
func checkChannel(t *testing.T, s *testServer, stream, actor, channel string) {
	t.Helper()
	n := 0
	for from := events.Start; ; {
		recs, err := s.app.store.ReadAll(t.Context(), from, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Stream != stream {
				continue
			}
			n++
			md, err := events.ParseMetadata(r.Metadata)
			if err != nil {
				t.Fatal(err)
			}
			if md.Channel != channel || (actor != "" && md.Actor != actor) {
				t.Errorf("%s %s: actor %q channel %q, want %q %q", stream, r.Type, md.Actor, md.Channel, actor, channel)
			}
		}
		if len(recs) < 500 {
			break
		}
		from = recs[len(recs)-1].Position
	}
	if n == 0 {
		t.Errorf("%s: no events", stream)
	}
}

// Every tool's input schema asks for what its route needs: the path parameters, the required
// body fields (and the files of an upload), confirm for deletions; and it takes nothing the
// route does not read.
func TestMCPToolSchemasMatchTheirRoutes(t *testing.T) {
	s := startServer(t, "", nil)
	cs := mcpSession(t, s, "")
	list, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := s.app.contract
	for _, tool := range list.Tools {
		route, ok := s.app.connector.Route(tool.Name)
		if !ok {
			t.Errorf("%s: unknown to the connector", tool.Name)
			continue
		}
		method, path, _ := strings.Cut(route, " ")
		in := tool.InputSchema.(map[string]any)
		props, _ := in["properties"].(map[string]any)
		var required []string
		for _, r := range anySlice(in["required"]) {
			required = append(required, r.(string))
		}
		if in["additionalProperties"] != false {
			t.Errorf("%s: input schema takes unknown arguments", tool.Name)
		}
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			if tool.Name != "link_opens" {
				t.Errorf("%s: %s is not documented", tool.Name, route)
			}
			continue
		}
		op := item.GetOperation(method)
		var want []string
		known := map[string]bool{"idempotencyKey": true, "confirm": true, "files": true}
		for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
			if p.Value.In == "path" || p.Value.In == "query" {
				known[p.Value.Name] = true
			}
			if p.Value.In == "path" {
				want = append(want, p.Value.Name)
			}
		}
		if op.RequestBody != nil {
			for _, mt := range op.RequestBody.Value.Content {
				want = append(want, mt.Schema.Value.Required...)
				for k := range mt.Schema.Value.Properties {
					known[k] = true
				}
				if _, ok := mt.Schema.Value.Properties["files"]; ok {
					want = append(want, "files")
				}
			}
		}
		if method == http.MethodDelete {
			want = append(want, "confirm")
		}
		if tool.Name == "whoami" {
			want = nil
		}
		slices.Sort(want)
		want = slices.Compact(want)
		slices.Sort(required)
		if !slices.Equal(required, want) {
			t.Errorf("%s: required %v, the route needs %v", tool.Name, required, want)
		}
		for k := range props {
			if !known[k] {
				t.Errorf("%s: argument %s is nothing %s reads", tool.Name, k, route)
			}
		}
		if _, ok := props["idempotencyKey"]; ok == (method == http.MethodGet) {
			t.Errorf("%s: idempotencyKey offered %v on %s", tool.Name, ok, method)
		}
	}
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

// /llms.txt lists every documented operation, names the connector, and GET /v1 links it.
func TestLLMsTxt(t *testing.T) {
	s := startServer(t, "", nil)
	r := s.do(http.MethodGet, "/llms.txt", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("llms.txt = %d %v", r.status, r.header)
	}
	guide := string(r.body)
	n := 0
	for path, item := range s.app.contract.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			if line := "- " + method + " " + path + " — " + op.Summary + "\n"; !strings.Contains(guide, line) {
				t.Errorf("llms.txt lacks %q", line)
			}
		}
	}
	if n < 30 || strings.Count(guide, "\n- ") != n {
		t.Errorf("llms.txt lists %d operations, the contract has %d", strings.Count(guide, "\n- "), n)
	}
	for _, want := range []string{s.srv.URL + "/mcp", "nextStep", "/v1/auth/otp/request", "publish_temporary_site"} {
		if !strings.Contains(guide, want) {
			t.Errorf("llms.txt lacks %q", want)
		}
	}
	d := s.do(http.MethodGet, "/v1", nil).data(t)
	if d["llms"] != "/llms.txt" || d["mcp"] != "/mcp" {
		t.Errorf("GET /v1 = %v", d)
	}
}

// An MCP request over the connector's limit is refused before the MCP server reads it.
func TestMCPBodyLimit(t *testing.T) {
	s := startServer(t, "", nil)
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"publish_temporary_site","arguments":{"files":[{"path":"a.txt","content":"` +
		strings.Repeat("a", mcpMaxBody) + `"}]}}}`
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/mcp", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body["code"] != "BODY_TOO_LARGE" {
		t.Errorf("oversized MCP request = %d %v", resp.StatusCode, body)
	}
}
