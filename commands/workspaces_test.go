package commands_test

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/projectsupload"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/blobs"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

type scopeEnv struct {
	pool    *pgxpool.Pool
	store   *pgstore.Store
	runner  *projections.Runner
	keys    *secret.Keyring
	domains *commands.Domains
	dns     *txtServer
	cleanup func() *commands.WorkspaceCleanup
	testAPI
}

const scopeSites = "sites.test"

// newScopeEnv runs the workspace, domain and project routes (write and read), the site server
// with the custom-host middleware, every projector they need, and a DNS server on loopback.
func newScopeEnv(t *testing.T) *scopeEnv {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	pool, store := newMigratedStore(t, logger)
	bs, err := blobs.New(t.TempDir())
	pgtest.Must(t, err, "blobs")
	keys, err := secret.New(bytes.Repeat([]byte("s"), 32))
	pgtest.Must(t, err, "keyring")
	runner := projections.NewRunner(pool, store, logger, projections.Accounts(), projections.Projects(),
		projections.Workspaces(), projections.Domains())
	runner.WaitTimeout = 20 * time.Second // a cold start under -race can pass the 5 s default
	pgtest.Background(t, runner.Run)
	dns := startTXTServer(t)
	now := func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
	scopes := commands.NewPGScopes(pool)
	p := commands.NewProjects(store, commands.NewPGProjectLookup(pool), scopes, keys, 0, now, logger)
	siteURL := commands.SiteURL("http", scopeSites, 8080)
	ws := commands.NewWorkspaces(store, now)
	doms := commands.NewDomains(store, keys, commands.NewDNSResolver(dns.addr), scopes, now, logger)
	readDomains := readapi.NewDomains(pool, keys, readapi.DomainSiteURL("http", 8080))

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.Use(readDomains.HostMiddleware(scopeSites, "127.0.0.1"), readapi.NewSites(pool, bs, scopeSites, now, logger).Middleware(), renderErrors)
	v1 := e.Group("/v1")
	commands.NewProjectRoutes(p, projectsupload.New(bs), commands.NewLimiter(pool), runner, siteURL, nil).Register(v1, requireAccount)
	readapi.NewProjects(pool, siteURL).Register(v1, requireAccount)
	commands.NewWorkspaceRoutes(ws, scopes, runner).Register(v1, requireAccount)
	readapi.NewWorkspaces(pool).Register(v1, requireAccount)
	commands.NewDomainRoutes(doms, runner).Register(v1, requireAccount)
	readDomains.Register(v1, requireAccount)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	env := &scopeEnv{pool: pool, store: store, runner: runner, keys: keys, domains: doms, dns: dns, testAPI: testAPI{srv}}
	env.cleanup = func() *commands.WorkspaceCleanup {
		c := commands.NewWorkspaceCleanup(store, store, pool, runner, now, logger)
		c.LockPoll = 100 * time.Millisecond
		return c
	}
	return env
}

// runCleanup runs a workspace-cleanup instance until the test ends.
func (e *scopeEnv) runCleanup(t *testing.T) {
	t.Helper()
	pgtest.Background(t, e.cleanup().Run)
}

// account registers an account on tier (with its e-mail identity) as sign-in would.
func (e *scopeEnv) account(t *testing.T, tier string) string {
	t.Helper()
	id := uuid.NewString()
	limits, ok := account.Limits(tier)
	if !ok {
		t.Fatalf("unknown tier %s", tier)
	}
	email := id + "@example.com"
	appendEvents(t, e.store, "identity-"+e.keys.Hash(secret.PurposeIdentifier, email), events.IdentityClaimed{AccountID: id, Kind: "email", At: time.Now().UTC()})
	pos := appendEvents(t, e.store, "account-"+id, events.AccountRegistered{AccountID: id, Email: email, Plan: tier, Limits: limits, At: time.Now().UTC()})
	pgtest.Must(t, e.runner.WaitFor(t.Context(), pos), "wait for account")
	return id
}

// createProject creates a one-page project through POST /v1/projects with extra form fields.
func (e *scopeEnv) createProject(t *testing.T, accountID, title string, fields map[string]string) apiResp {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("title", title)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("files", "index.html")
	_, _ = io.WriteString(fw, "<h1>"+title+"</h1>")
	_ = w.Close()
	return e.do(t, "POST", "/v1/projects", accountID, &buf, w.FormDataContentType())
}

func TestWorkspaceRoutes(t *testing.T) {
	e := newScopeEnv(t)
	free, paid, other := e.account(t, "free"), e.account(t, "starter"), e.account(t, "pro")

	// Free accounts: every workspace endpoint is 403 FREE_TIER_RESTRICTED naming starter.
	someID := uuid.NewString()
	for _, r := range []apiResp{
		e.json(t, "GET", "/v1/workspaces", free, nil),
		e.json(t, "POST", "/v1/workspaces", free, map[string]any{"name": "Team"}),
		e.json(t, "PATCH", "/v1/workspaces/"+someID, free, map[string]any{"name": "Team"}),
		e.json(t, "DELETE", "/v1/workspaces/"+someID, free, nil),
	} {
		r.want(t, 403, "FREE_TIER_RESTRICTED")
		if r.Body["requiredTier"] != "starter" {
			t.Errorf("requiredTier = %v", r.Body["requiredTier"])
		}
	}
	e.json(t, "GET", "/v1/workspaces", "", nil).want(t, 401, "API_KEY_MISSING")

	// Bad input changes nothing.
	e.json(t, "POST", "/v1/workspaces", paid, `not json`).want(t, 400, "INVALID_JSON")
	for _, body := range []any{map[string]any{}, map[string]any{"name": "   "}, map[string]any{"name": 7},
		map[string]any{"name": nil}, map[string]any{"name": strings.Repeat("x", 256)}} {
		r := e.json(t, "POST", "/v1/workspaces", paid, body).want(t, 422, "VALIDATION_FAILED")
		if f, _ := r.Body["fields"].(map[string]any); f["name"] == nil {
			t.Errorf("%v: fields = %v", body, r.Body["fields"])
		}
	}

	a := e.json(t, "POST", "/v1/workspaces", paid, map[string]any{"name": "  Alpha "}).want(t, 201, "").data()
	b := e.json(t, "POST", "/v1/workspaces", paid, map[string]any{"name": strings.Repeat("é", 255)}).want(t, 201, "").data()
	if a["name"] != "Alpha" || a["projectCount"] != 0.0 || a["createdAt"] == nil || a["updatedAt"] == nil {
		t.Errorf("created = %v", a)
	}
	aID, bID := a["id"].(string), b["id"].(string)
	e.json(t, "POST", "/v1/workspaces", other, map[string]any{"name": "Theirs"}).want(t, 201, "")

	// A project in Alpha counts; the list is in creation order and only the caller's.
	e.createProject(t, paid, "In Alpha", map[string]string{"workspaceId": aID}).want(t, 201, "")
	e.createProject(t, other, "Not yours", map[string]string{"workspaceId": aID}).want(t, 422, "VALIDATION_FAILED")
	list := e.json(t, "GET", "/v1/workspaces", paid, nil).want(t, 200, "").data()["workspaces"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != aID || list[1].(map[string]any)["id"] != bID ||
		list[0].(map[string]any)["projectCount"] != 1.0 || list[1].(map[string]any)["projectCount"] != 0.0 {
		t.Errorf("list = %v", list)
	}

	// Rename answers the summary; invalid names and other tenants change nothing.
	r := e.json(t, "PATCH", "/v1/workspaces/"+aID, paid, map[string]any{"name": "Renamed"}).want(t, 200, "").data()
	if r["id"] != aID || r["name"] != "Renamed" || r["projectCount"] != 1.0 || r["createdAt"] != a["createdAt"] {
		t.Errorf("renamed = %v", r)
	}
	e.json(t, "PATCH", "/v1/workspaces/"+aID, paid, map[string]any{"name": ""}).want(t, 422, "VALIDATION_FAILED")
	e.json(t, "PATCH", "/v1/workspaces/"+aID, other, map[string]any{"name": "Mine"}).want(t, 404, "NOT_FOUND")
	e.json(t, "DELETE", "/v1/workspaces/"+aID, other, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "PATCH", "/v1/workspaces/not-a-uuid", paid, map[string]any{"name": "X"}).want(t, 404, "NOT_FOUND")
	e.json(t, "PATCH", "/v1/workspaces/"+uuid.NewString(), paid, map[string]any{"name": "X"}).want(t, 404, "NOT_FOUND")
	list = e.json(t, "GET", "/v1/workspaces", paid, nil).want(t, 200, "").data()["workspaces"].([]any)
	if list[0].(map[string]any)["name"] != "Renamed" {
		t.Errorf("list after rename = %v", list)
	}

	// Delete, then it is gone everywhere.
	e.json(t, "DELETE", "/v1/workspaces/"+bID, paid, nil).want(t, 200, "")
	e.json(t, "DELETE", "/v1/workspaces/"+bID, paid, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "PATCH", "/v1/workspaces/"+bID, paid, map[string]any{"name": "Back"}).want(t, 404, "NOT_FOUND")
	e.createProject(t, paid, "Into deleted", map[string]string{"workspaceId": bID}).want(t, 422, "VALIDATION_FAILED")
	list = e.json(t, "GET", "/v1/workspaces", paid, nil).want(t, 200, "").data()["workspaces"].([]any)
	if len(list) != 1 {
		t.Errorf("list after delete = %v", list)
	}
}

func TestWorkspaceCreateIsIdempotentPerCommand(t *testing.T) {
	e := newScopeEnv(t)
	paid := e.account(t, "creator")
	ws := commands.NewWorkspaces(e.store, time.Now)
	cmdID := uuid.New()
	first, err := ws.Create(t.Context(), cmdID, paid, "Team")
	pgtest.Must(t, err, "create")
	again, err := ws.Create(t.Context(), cmdID, paid, "Team")
	pgtest.Must(t, err, "create again")
	if first.ID != again.ID || first.Name != again.Name {
		t.Errorf("retried create = %+v, first %+v", again, first)
	}
	s, err := commands.Load(t.Context(), e.store, workspace.Stream(first.ID))
	pgtest.Must(t, err, "load")
	if len(s.Events) != 1 {
		t.Errorf("stream has %d events, want 1", len(s.Events))
	}
}

// projectStream loads a project's events and their metadata.
func (e *scopeEnv) projectStream(t *testing.T, id string) commands.Stream {
	t.Helper()
	s, err := commands.Load(t.Context(), e.store, project.Stream(id))
	pgtest.Must(t, err, "load project %s", id)
	return s
}

func TestWorkspaceDeletionMovesProjects(t *testing.T) {
	e := newScopeEnv(t)
	// Two instances at once: the lock elects one, and the moves still happen exactly once.
	e.runCleanup(t)
	e.runCleanup(t)
	owner := e.account(t, "pro")
	doomed := e.json(t, "POST", "/v1/workspaces", owner, map[string]any{"name": "Doomed"}).want(t, 201, "").data()["id"].(string)
	kept := e.json(t, "POST", "/v1/workspaces", owner, map[string]any{"name": "Kept"}).want(t, 201, "").data()["id"].(string)

	const n = 4
	var moved []string
	for i := range n {
		id := e.createProject(t, owner, "Site "+string(rune('A'+i)), map[string]string{"workspaceId": doomed}).want(t, 201, "").data()["projectId"].(string)
		moved = append(moved, id)
	}
	// One more arrives through a PATCH move; one elsewhere stays where it is.
	late := e.createProject(t, owner, "Moved in", nil).want(t, 201, "").data()["projectId"].(string)
	e.json(t, "PATCH", "/v1/projects/"+late, owner, map[string]any{"workspaceId": doomed}).want(t, 200, "")
	moved = append(moved, late)
	stays := e.createProject(t, owner, "Elsewhere", map[string]string{"workspaceId": kept}).want(t, 201, "").data()["projectId"].(string)

	listed := e.json(t, "GET", "/v1/projects?workspaceId="+doomed, owner, nil).want(t, 200, "").data()["projects"].([]any)
	if len(listed) != n+1 {
		t.Fatalf("projects in the workspace = %d, want %d", len(listed), n+1)
	}

	deletedAt := time.Now()
	e.json(t, "DELETE", "/v1/workspaces/"+doomed, owner, nil).want(t, 200, "")

	deadline := time.Now().Add(5 * time.Second) // DESIGN §12: process managers act within 5 s
	for _, id := range moved {
		for {
			s := e.projectStream(t, id)
			last, ok := s.Events[len(s.Events)-1].(events.ProjectMoved)
			if ok && last.FromWorkspaceID == doomed && last.ToWorkspaceID == "" {
				md, _ := events.ParseMetadata(s.Records[len(s.Records)-1].Metadata)
				if md.Actor != "system:workspace-cleanup" {
					t.Errorf("%s: move actor = %q", id, md.Actor)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("project %s not moved out %v after the delete; last event %T", id, time.Since(deletedAt), s.Events[len(s.Events)-1])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Give a duplicate a chance to appear, then check there is none.
	time.Sleep(300 * time.Millisecond)
	for _, id := range moved {
		s := e.projectStream(t, id)
		outs := 0
		for _, ev := range s.Events {
			if m, ok := ev.(events.ProjectMoved); ok && m.FromWorkspaceID == doomed {
				outs++
			}
		}
		if outs != 1 {
			t.Errorf("%s has %d moves out of the workspace, want 1", id, outs)
		}
		if _, ok := s.Events[len(s.Events)-1].(events.ProjectMoved); !ok {
			t.Errorf("%s: stream ends in %T", id, s.Events[len(s.Events)-1])
		}
	}
	if s := e.projectStream(t, stays); len(s.Events) != 1 {
		t.Errorf("the project in another workspace got %d events", len(s.Events))
	}

	// The read side: the projects are in the personal scope and still there.
	pgtest.Must(t, e.runner.WaitFor(t.Context(), e.head(t)), "wait")
	for _, id := range moved {
		p := e.json(t, "GET", "/v1/projects/"+id, owner, nil).want(t, 200, "").data()
		if p["workspaceId"] != nil {
			t.Errorf("%s workspaceId = %v, want null", id, p["workspaceId"])
		}
	}
	if l := e.json(t, "GET", "/v1/projects?workspaceId="+doomed, owner, nil).want(t, 200, "").data()["projects"].([]any); len(l) != 0 {
		t.Errorf("projects still in the deleted workspace: %v", l)
	}

	// A project that lands in the workspace after its deletion (a create racing the delete) is
	// moved out too.
	racer := uuid.NewString()
	appendEvents(t, e.store, project.Stream(racer), events.ProjectCreated{ProjectID: racer, OwnerID: owner, WorkspaceID: doomed,
		Settings:   events.ProjectSettings{Title: "Racer", Slug: "racer-" + racer[:8], Status: "public", Access: "public"},
		Deployment: events.Deployment{DeploymentID: uuid.NewString(), Version: 1, Type: "html"}, At: time.Now().UTC()})
	deadline = time.Now().Add(5 * time.Second)
	for {
		s := e.projectStream(t, racer)
		if m, ok := s.Events[len(s.Events)-1].(events.ProjectMoved); ok && m.FromWorkspaceID == doomed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("racing project not moved out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// head is the position of the newest event in the log.
func (e *scopeEnv) head(t *testing.T) events.Position {
	t.Helper()
	pos, err := e.store.Head(t.Context())
	pgtest.Must(t, err, "head")
	return pos
}
