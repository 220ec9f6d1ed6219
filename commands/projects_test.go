package commands_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
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
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/blobs"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

type projEnv struct {
	pool     *pgxpool.Pool
	store    *pgstore.Store
	runner   *projections.Runner
	clock    *clock
	blobs    *blobs.Store
	projects *commands.Projects
	expiry   *commands.Expiry
	testAPI
}

const sites = "sites.test"

func newProjEnv(t *testing.T) *projEnv {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	pool, store := newMigratedStore(t, logger)
	bs, err := blobs.New(t.TempDir())
	if err != nil {
		t.Fatalf("blobs: %v", err)
	}
	keys, err := secret.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	runner := projections.NewRunner(pool, store, logger, projections.Projects(), projections.Accounts())
	pgtest.Background(t, runner.Run)
	clk := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
	p := commands.NewProjects(store, commands.NewPGProjectLookup(pool), nil, keys, 0, clk.now, logger).
		WithQuotaGate(commands.NewPGQuotaGate(pool, runner))
	siteURL := commands.SiteURL("http", sites, 8080)
	routes := commands.NewProjectRoutes(p, projectsupload.New(bs), commands.NewLimiter(pool), runner, siteURL,
		func(tok string) string { return "http://localhost:8080/claim/" + tok })
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.Use(readapi.NewSites(pool, bs, sites, clk.now, logger).Middleware(), func(c *gin.Context) {
		c.Request = c.Request.WithContext(events.WithMetadata(c.Request.Context(), events.Metadata{ClientIP: c.GetHeader("X-Test-IP")}))
	}, renderErrors)
	v1 := e.Group("/v1")
	routes.Register(v1, requireAccount)
	readapi.NewProjects(pool, siteURL).Register(v1, requireAccount)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &projEnv{pool: pool, store: store, runner: runner, clock: clk, blobs: bs, projects: p,
		expiry: commands.NewExpiry(p, pool, 0, logger), testAPI: testAPI{srv}}
}

// account registers an account on tier by appending its registration, as sign-in would.
func (e *projEnv) account(t *testing.T, tier string) string {
	t.Helper()
	id := uuid.NewString()
	limits, ok := account.Limits(tier)
	if !ok {
		t.Fatalf("unknown tier %s", tier)
	}
	pos := appendEvents(t, e.store, "account-"+id, events.AccountRegistered{AccountID: id, Email: id + "@example.com", Plan: tier, Limits: limits, At: e.clock.now()})
	pgtest.Must(t, e.runner.WaitFor(t.Context(), pos), "wait for account")
	return id
}

type upFile struct{ name, body string }

func (e *projEnv) upload(t *testing.T, method, path, accountID string, fields map[string]string, files []upFile, hdr ...string) apiResp {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	for _, f := range files {
		fw, _ := w.CreateFormFile("files", f.name)
		_, _ = io.WriteString(fw, f.body)
	}
	_ = w.Close()
	return e.do(t, method, path, accountID, &buf, w.FormDataContentType(), hdr...)
}

var siteFiles = []upFile{{"index.html", "<h1>v1</h1>"}}

// fetchSite GETs / of a site by its host name from the same server as the API.
func (e *projEnv) fetchSite(t *testing.T, slug string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/", nil)
	req.Host = slug + "." + sites + ":8080"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("fetch %s: %v", slug, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (e *projEnv) wantSite(t *testing.T, slug string, status int, body string) {
	t.Helper()
	gotStatus, got := e.fetchSite(t, slug)
	if gotStatus != status || (body != "" && got != body) {
		t.Errorf("site %s = %d %q, want %d %q", slug, gotStatus, got, status, body)
	}
}

func TestProjectLifecycle(t *testing.T) {
	e := newProjEnv(t)
	acc := e.account(t, "starter")

	r := e.upload(t, "POST", "/v1/projects", acc, map[string]string{"title": "My Project"}, siteFiles)
	r.want(t, 201, "")
	d := r.data()
	id, _ := d["projectId"].(string)
	if d["slug"] != "my-project" || d["url"] != "http://my-project.sites.test:8080" || d["type"] != "html" ||
		d["title"] != "My Project" || d["expiresAt"] != nil || d["createdAt"] == nil {
		t.Errorf("create data = %v", d)
	}
	quota, _ := d["quota"].(map[string]any)
	projects, _ := quota["projects"].(map[string]any)
	storage, _ := quota["storage"].(map[string]any)
	if projects["used"] != 1.0 || projects["limit"] != 10.0 || storage["usedBytes"] != float64(len("<h1>v1</h1>")) {
		t.Errorf("quota = %v", quota)
	}

	// Read-your-writes: the answered create is visible at once.
	r = e.json(t, "GET", "/v1/projects/"+id, acc, nil)
	r.want(t, 200, "")
	if g := r.data(); g["id"] != id || g["status"] != "public" || g["access"] != "public" || g["analyticsEnabled"] != true || g["archivedAt"] != nil {
		t.Errorf("get = %v", g)
	}

	e.wantSite(t, "my-project", 200, "<h1>v1</h1>")

	// Two pushes: history lists 3 deployments newest first, exactly one active.
	var pushed []string
	for i := 2; i <= 3; i++ {
		r = e.upload(t, "PUT", "/v1/projects/"+id, acc, nil, []upFile{{"index.html", strings.Repeat("v", i)}})
		r.want(t, 200, "")
		pushed = append(pushed, r.data()["deploymentId"].(string))
		if r.data()["url"] != "http://my-project.sites.test:8080" {
			t.Errorf("push url = %v", r.data()["url"])
		}
	}
	e.wantSite(t, "my-project", 200, "vvv")
	hist := e.json(t, "GET", "/v1/projects/"+id+"/status", acc, nil)
	hist.want(t, 200, "")
	list, _ := hist.Body["data"].([]any)
	if len(list) != 3 {
		t.Fatalf("history = %v", hist.Body)
	}
	active := 0
	for i, it := range list {
		m := it.(map[string]any)
		if m["version"] != float64(3-i) {
			t.Errorf("history[%d].version = %v", i, m["version"])
		}
		if m["status"] == "active" {
			active++
		}
	}
	if active != 1 || list[0].(map[string]any)["status"] != "active" || list[0].(map[string]any)["deploymentId"] != pushed[1] {
		t.Errorf("history = %v", list)
	}
	first := list[2].(map[string]any)["deploymentId"].(string)

	// Rollback to version 1 appends version 4 pointing at it.
	r = e.json(t, "POST", "/v1/projects/"+id+"/rollback", acc, map[string]string{"deploymentId": first})
	r.want(t, 200, "")
	e.wantSite(t, "my-project", 200, "<h1>v1</h1>")
	hist = e.json(t, "GET", "/v1/projects/"+id+"/status", acc, nil)
	top := hist.Body["data"].([]any)[0].(map[string]any)
	if top["version"] != 4.0 || top["status"] != "active" || top["rollbackOf"] != first || top["sizeBytes"] != float64(len("<h1>v1</h1>")) {
		t.Errorf("after rollback top = %v", top)
	}
	e.json(t, "POST", "/v1/projects/"+id+"/rollback", acc, map[string]string{"deploymentId": uuid.NewString()}).want(t, 422, "VALIDATION_FAILED")

	// PATCH every field; the password never comes back.
	r = e.json(t, "PATCH", "/v1/projects/"+id, acc, map[string]any{
		"title": "Renamed", "slug": "renamed", "status": "private", "access": "password", "password": "s3cret",
		"noIndex": true, "disableDownloads": true, "pageTitle": "Tab", "metaDescription": "Desc",
		"expiresIn": "7d", "analyticsEnabled": false,
	})
	r.want(t, 200, "")
	if r.data()["updated"] != true {
		t.Errorf("patch = %v", r.Body)
	}
	g := e.json(t, "GET", "/v1/projects/"+id, acc, nil).data()
	if g["title"] != "Renamed" || g["slug"] != "renamed" || g["url"] != "http://renamed.sites.test:8080" || g["status"] != "private" ||
		g["access"] != "password" || g["noIndex"] != true || g["disableDownloads"] != true || g["pageTitle"] != "Tab" ||
		g["metaDescription"] != "Desc" || g["analyticsEnabled"] != false || g["expiresAt"] == nil {
		t.Errorf("after patch = %v", g)
	}
	if _, ok := g["password"]; ok {
		t.Errorf("password returned: %v", g)
	}
	var hash string
	if err := e.pool.QueryRow(t.Context(), `SELECT password_hash FROM projects WHERE id = $1`, id).Scan(&hash); err != nil || !strings.HasPrefix(hash, "sealed:v1:") || strings.Contains(hash, "argon2id") {
		t.Errorf("stored password = %q, %v; want a sealed argon2id hash", hash, err)
	}
	e.json(t, "PATCH", "/v1/projects/"+id, acc, map[string]any{"title": 5, "bogus": true}).want(t, 422, "VALIDATION_FAILED")
	e.do(t, "PATCH", "/v1/projects/"+id, acc, strings.NewReader("{nope"), "application/json").want(t, 400, "INVALID_JSON")
	e.wantSite(t, "renamed", 404, "") // private
	e.json(t, "PATCH", "/v1/projects/"+id, acc, map[string]any{"status": "public"}).want(t, 200, "")
	e.wantSite(t, "renamed", 401, "") // password access
	e.json(t, "PATCH", "/v1/projects/"+id, acc, map[string]any{"expiresIn": "none", "access": "public"}).want(t, 200, "")
	e.wantSite(t, "renamed", 200, "<h1>v1</h1>")
	e.wantSite(t, "my-project", 404, "")

	// The old slug was released: another project can take it.
	e.clock.advance(time.Second)
	r = e.upload(t, "POST", "/v1/projects", acc, map[string]string{"title": "Other", "slug": "my-project"}, siteFiles)
	r.want(t, 201, "")
	otherID := r.data()["projectId"].(string)

	// Archive (idempotent), push to archived, list filters, unarchive (idempotent).
	e.json(t, "POST", "/v1/projects/"+id+"/archive", acc, nil).want(t, 200, "")
	r = e.json(t, "POST", "/v1/projects/"+id+"/archive", acc, nil)
	r.want(t, 200, "")
	if r.data()["archived"] != true {
		t.Errorf("archive = %v", r.Body)
	}
	e.upload(t, "PUT", "/v1/projects/"+id, acc, nil, siteFiles).want(t, 409, "PROJECT_ARCHIVED")
	e.wantSite(t, "renamed", 404, "")
	ids := func(q string) []string {
		r := e.json(t, "GET", "/v1/projects"+q, acc, nil)
		r.want(t, 200, "")
		var out []string
		for _, p := range r.data()["projects"].([]any) {
			out = append(out, p.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := ids(""); len(got) != 1 || got[0] != otherID {
		t.Errorf("active list = %v", got)
	}
	if got := ids("?archived=true"); len(got) != 1 || got[0] != id {
		t.Errorf("archived list = %v", got)
	}
	if got := ids("?archived=all"); len(got) != 2 || got[0] != otherID || got[1] != id {
		t.Errorf("all list (newest first) = %v", got)
	}
	if got := ids("?archived=all&limit=1&offset=1"); len(got) != 1 || got[0] != id {
		t.Errorf("paged list = %v", got)
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?offset=-1", "?archived=maybe", "?workspaceId=nope"} {
		e.json(t, "GET", "/v1/projects"+q, acc, nil).want(t, 422, "VALIDATION_FAILED")
	}
	r = e.json(t, "POST", "/v1/projects/"+id+"/unarchive", acc, nil)
	r.want(t, 200, "")
	if r.data()["archived"] != false {
		t.Errorf("unarchive = %v", r.Body)
	}
	e.json(t, "POST", "/v1/projects/"+id+"/unarchive", acc, nil).want(t, 200, "")
	e.wantSite(t, "renamed", 200, "<h1>v1</h1>")

	// Delete: gone everywhere, slug free again.
	r = e.json(t, "DELETE", "/v1/projects/"+id, acc, nil)
	r.want(t, 200, "")
	if r.data()["deleted"] != true {
		t.Errorf("delete = %v", r.Body)
	}
	e.json(t, "GET", "/v1/projects/"+id, acc, nil).want(t, 404, "NOT_FOUND")
	e.wantSite(t, "renamed", 404, "")
	e.json(t, "DELETE", "/v1/projects/"+id, acc, nil).want(t, 404, "NOT_FOUND")
	e.upload(t, "POST", "/v1/projects", acc, map[string]string{"title": "x", "slug": "renamed"}, siteFiles).want(t, 201, "")

	// Blob collection keeps exactly the manifests of live deployments: the deleted project's
	// pushed versions are no longer referenced.
	live, err := commands.NewPGProjectLookup(e.pool).LiveManifests(t.Context())
	if err != nil {
		t.Fatalf("live manifests: %v", err)
	}
	var wantLive int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(DISTINCT manifest_hash) FROM deployments`).Scan(&wantLive); err != nil || len(live) != wantLive || wantLive != 1 {
		t.Errorf("live manifests = %v, want the %d of the two remaining projects (same files)", live, wantLive)
	}
}

func TestFreeTierGatesAndQuota(t *testing.T) {
	e := newProjEnv(t)
	acc := e.account(t, "free")
	var id string
	for i := range 3 {
		r := e.upload(t, "POST", "/v1/projects", acc, map[string]string{"title": "Site"}, siteFiles)
		r.want(t, 201, "")
		id = r.data()["projectId"].(string)
		if wantSlug := slug.Candidate("site", i+1); r.data()["slug"] != wantSlug {
			t.Errorf("auto slug = %v, want %s", r.data()["slug"], wantSlug)
		}
	}
	e.upload(t, "POST", "/v1/projects", acc, map[string]string{"title": "Site"}, siteFiles).want(t, 403, "PROJECT_LIMIT_REACHED")
	gated := []apiResp{
		e.upload(t, "PUT", "/v1/projects/"+id, acc, nil, siteFiles),
		e.json(t, "PATCH", "/v1/projects/"+id, acc, map[string]any{"title": "x"}),
		e.json(t, "POST", "/v1/projects/"+id+"/archive", acc, nil),
		e.json(t, "POST", "/v1/projects/"+id+"/unarchive", acc, nil),
		e.json(t, "POST", "/v1/projects/"+id+"/rollback", acc, map[string]string{"deploymentId": uuid.NewString()}),
		e.json(t, "GET", "/v1/projects/"+id+"/status", acc, nil),
	}
	for i, r := range gated {
		r.want(t, 403, "FREE_TIER_RESTRICTED")
		if r.Body["requiredTier"] != "starter" {
			t.Errorf("gated[%d] requiredTier = %v", i, r.Body["requiredTier"])
		}
	}
	// Delete is allowed on free and frees a slot.
	e.json(t, "DELETE", "/v1/projects/"+id, acc, nil).want(t, 200, "")
	e.upload(t, "POST", "/v1/projects", acc, map[string]string{"title": "Site"}, siteFiles).want(t, 201, "")

	// Storage: a 50 MiB plan refuses an upload that would exceed it.
	other := e.account(t, "free")
	_, err := e.projects.Create(t.Context(), uuid.New(), other, commands.CreateInput{Title: "Big",
		Upload: commands.Upload{ManifestHash: strings.Repeat("a", 64), Type: "files", FileCount: 1, SizeBytes: 50<<20 + 1}})
	if !errors.Is(err, project.ErrStorageLimit) {
		t.Errorf("oversized create = %v, want %v", err, project.ErrStorageLimit)
	}
}

func TestSlugRules(t *testing.T) {
	e := newProjEnv(t)
	a, b := e.account(t, "starter"), e.account(t, "starter")
	e.upload(t, "POST", "/v1/projects", a, map[string]string{"title": "A", "slug": "taken"}, siteFiles).want(t, 201, "")
	e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "B", "slug": "taken"}, siteFiles).want(t, 409, "SLUG_TAKEN")
	for _, s := range []string{"www", "Bad_Slug", "-x", strings.Repeat("a", 64)} {
		r := e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "B", "slug": s}, siteFiles)
		r.want(t, 422, "VALIDATION_FAILED")
		if f, _ := r.Body["fields"].(map[string]any); f["slug"] == nil {
			t.Errorf("slug %q: fields = %v", s, r.Body["fields"])
		}
	}
	e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": ""}, siteFiles).want(t, 422, "VALIDATION_FAILED")
	e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "P", "access": "password"}, siteFiles).want(t, 422, "VALIDATION_FAILED")
	e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "P", "workspaceId": uuid.NewString()}, siteFiles).want(t, 422, "VALIDATION_FAILED")
	// A refused create reserved nothing: the slug is still free.
	e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "", "slug": "free-one"}, siteFiles).want(t, 422, "VALIDATION_FAILED")
	e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "ok", "slug": "free-one"}, siteFiles).want(t, 201, "")
	r := e.upload(t, "POST", "/v1/projects", b, map[string]string{"title": "Taken"}, siteFiles)
	r.want(t, 201, "")
	if r.data()["slug"] != "taken-2" {
		t.Errorf("auto slug after collision = %v", r.data()["slug"])
	}
	// PATCH to a taken slug.
	id := r.data()["projectId"].(string)
	e.json(t, "PATCH", "/v1/projects/"+id, b, map[string]any{"slug": "taken"}).want(t, 409, "SLUG_TAKEN")
}

func TestTenancy(t *testing.T) {
	e := newProjEnv(t)
	owner, other := e.account(t, "pro"), e.account(t, "pro")
	r := e.upload(t, "POST", "/v1/projects", owner, map[string]string{"title": "Mine"}, siteFiles)
	r.want(t, 201, "")
	id := r.data()["projectId"].(string)
	for name, r := range map[string]apiResp{
		"get":       e.json(t, "GET", "/v1/projects/"+id, other, nil),
		"status":    e.json(t, "GET", "/v1/projects/"+id+"/status", other, nil),
		"push":      e.upload(t, "PUT", "/v1/projects/"+id, other, nil, siteFiles),
		"patch":     e.json(t, "PATCH", "/v1/projects/"+id, other, map[string]any{"title": "x"}),
		"delete":    e.json(t, "DELETE", "/v1/projects/"+id, other, nil),
		"archive":   e.json(t, "POST", "/v1/projects/"+id+"/archive", other, nil),
		"unarchive": e.json(t, "POST", "/v1/projects/"+id+"/unarchive", other, nil),
		"rollback":  e.json(t, "POST", "/v1/projects/"+id+"/rollback", other, map[string]string{"deploymentId": uuid.NewString()}),
		"bad id":    e.json(t, "GET", "/v1/projects/not-a-uuid", owner, nil),
	} {
		if r.Status != 404 {
			t.Errorf("%s as another account = %d %v, want 404", name, r.Status, r.Body)
		}
	}
	if r := e.json(t, "GET", "/v1/projects?archived=all", other, nil); len(r.data()["projects"].([]any)) != 0 {
		t.Errorf("other account lists %v", r.data())
	}
	e.json(t, "GET", "/v1/projects/"+id, owner, nil).want(t, 200, "")
	e.json(t, "GET", "/v1/projects", "", nil).want(t, 401, "API_KEY_MISSING")
}

func TestTemporaryProjectsAndClaims(t *testing.T) {
	e := newProjEnv(t)
	r := e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "192.0.2.1")
	r.want(t, 200, "")
	d := r.data()
	token, _ := d["claimToken"].(string)
	s, _ := d["slug"].(string)
	if len(token) != 64 || slug.Validate(s) != "" || d["url"] != "http://"+s+".sites.test:8080" ||
		d["claimUrl"] != "http://localhost:8080/claim/"+token || d["projectId"] == nil {
		t.Errorf("temp = %v", d)
	}
	exp, err := time.Parse(readapi.TimeLayout, d["expiresAt"].(string))
	if err != nil || !exp.Equal(e.clock.now().Add(15*time.Minute)) {
		t.Errorf("expiresAt = %v (%v), want now+15m", d["expiresAt"], err)
	}
	// The token is derived from the project ID with the server secret: nothing of it is stored,
	// not even a hash, in the read model or the creation event.
	var stored *string
	if err := e.pool.QueryRow(t.Context(), `SELECT claim_token_hash FROM projects WHERE slug = $1`, s).Scan(&stored); err != nil || stored != nil {
		t.Errorf("stored claim token hash = %v, %v; want none", stored, err)
	}
	if created, err := commands.Load(t.Context(), e.store, project.Stream(d["projectId"].(string))); err != nil ||
		len(created.Records) != 1 || strings.Contains(string(created.Records[0].Data), "claimToken") {
		t.Errorf("creation event = %v, %v; want one without a claim token hash", created.Records, err)
	}

	// Per-IP limit: 3 a minute (one used above), other IPs unaffected.
	e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "192.0.2.1").want(t, 200, "")
	r2 := e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "192.0.2.1")
	r2.want(t, 200, "")
	limited := e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "192.0.2.1")
	limited.want(t, 429, "RATE_LIMITED")
	if limited.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", limited.Header)
	}
	e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "192.0.2.2").want(t, 200, "")
	// An IPv6 client is counted by its /64: three addresses of one /64 share one allowance.
	for _, ip := range []string{"2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:ffff::3"} {
		e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", ip).want(t, 200, "")
	}
	e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "2001:db8:7:7:abcd::9").want(t, 429, "RATE_LIMITED")
	e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "2001:db8:7:8::1").want(t, 200, "")
	e.upload(t, "POST", "/v1/projects/temp", "", nil, []upFile{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"f", "6"}}, "X-Test-IP", "192.0.2.3").want(t, 413, "UPLOAD_TOO_LARGE")

	// Claim on free: +7 days; again: 409; unknown token: 404.
	acc := e.account(t, "free")
	c := e.json(t, "POST", "/v1/projects/claim/"+token, acc, nil)
	c.want(t, 200, "")
	cexp, _ := time.Parse(readapi.TimeLayout, c.data()["expiresAt"].(string))
	if c.data()["slug"] != s || c.data()["projectId"] != d["projectId"] || !cexp.Equal(e.clock.now().Add(7*24*time.Hour)) {
		t.Errorf("claim = %v", c.data())
	}
	e.json(t, "POST", "/v1/projects/claim/"+token, e.account(t, "pro"), nil).want(t, 409, "ALREADY_CLAIMED")
	e.json(t, "POST", "/v1/projects/claim/"+strings.Repeat("z", 32), acc, nil).want(t, 404, "NOT_FOUND")
	// A token naming the project with a forged MAC is unknown too.
	paidTok := r2.data()["claimToken"].(string)
	forged := paidTok[:32] + strings.Repeat("0", 32)
	e.json(t, "POST", "/v1/projects/claim/"+forged, acc, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "POST", "/v1/projects/claim/"+paidTok[:63]+"x", acc, nil).want(t, 404, "NOT_FOUND")
	g := e.json(t, "GET", "/v1/projects/"+d["projectId"].(string), acc, nil)
	g.want(t, 200, "")

	// Paid claim: permanent.
	c = e.json(t, "POST", "/v1/projects/claim/"+paidTok, e.account(t, "pro"), nil)
	c.want(t, 200, "")
	if c.data()["expiresAt"] != nil {
		t.Errorf("paid claim expiresAt = %v", c.data()["expiresAt"])
	}

	// Expiry: past the TTL the unclaimed one is expired and purged, its claim 404, its slug free.
	unclaimed := e.upload(t, "POST", "/v1/projects/temp", "", nil, siteFiles, "X-Test-IP", "192.0.2.9").data()
	e.clock.advance(15*time.Minute + time.Second)
	n, err := e.expiry.Tick(t.Context())
	if err != nil || n < 1 {
		t.Fatalf("expiry tick = %d, %v", n, err)
	}
	e.json(t, "POST", "/v1/projects/claim/"+unclaimed["claimToken"].(string), acc, nil).want(t, 404, "NOT_FOUND")
	st, err := commands.Load(t.Context(), e.store, "slug-"+unclaimed["slug"].(string))
	if err != nil || len(st.Events) != 2 || st.Events[1].EventType() != events.TypeSlugReleased {
		t.Errorf("slug stream after purge = %v, %v", st.Events, err)
	}
	pst, err := commands.Load(t.Context(), e.store, project.Stream(unclaimed["projectId"].(string)))
	if err != nil || len(pst.Records) != 3 {
		t.Fatalf("project stream = %v, %v", pst.Events, err)
	}
	md, _ := events.ParseMetadata(pst.Records[1].Metadata)
	if pst.Events[1].EventType() != events.TypeProjectExpired || md.Actor != "system:expiry" {
		t.Errorf("expiry event = %s by %s", pst.Events[1].EventType(), md.Actor)
	}
	// A second tick, or a second instance, changes nothing.
	if n, err := e.expiry.Tick(t.Context()); err != nil || n != 0 {
		t.Errorf("second tick = %d, %v", n, err)
	}
	if ok, err := e.projects.Expire(t.Context(), unclaimed["projectId"].(string), e.clock.now()); ok || err != nil {
		t.Errorf("repeated expire = %v, %v", ok, err)
	}
}

// A temporary project created before claim tokens were derived from the project ID has only
// the keyed hash of its random 32-character token in its creation event: that token still claims
// it, and a derived-format token for the same project does not.
func TestLegacyClaimTokenStillClaims(t *testing.T) {
	e := newProjEnv(t)
	keys, err := secret.New(bytes.Repeat([]byte("k"), 32))
	pgtest.Must(t, err, "keyring")
	pid := uuid.New()
	token := strings.Repeat("a1", 16)
	exp := e.clock.now().Add(10 * time.Minute)
	pos := appendEvents(t, e.store, project.Stream(pid.String()), events.ProjectCreated{
		ProjectID: pid.String(), Temporary: true, ClaimTokenHash: keys.Hash(secret.PurposeClaim, token),
		Settings:   events.ProjectSettings{Title: "legacy-site", Slug: "legacy-site", Status: "public", Access: "public", ExpiresAt: &exp},
		Deployment: events.Deployment{DeploymentID: uuid.NewString(), Version: 1, ManifestHash: strings.Repeat("0", 64), Type: "html", FileCount: 1, SizeBytes: 1, IndexPath: "index.html"},
		At:         e.clock.now(),
	})
	pgtest.Must(t, e.runner.WaitFor(t.Context(), pos), "wait for project")
	acc := e.account(t, "free")
	derived := hex.EncodeToString(pid[:]) + hex.EncodeToString(keys.Sum(secret.PurposeClaimIssue, pid.String())[:16])
	e.json(t, "POST", "/v1/projects/claim/"+derived, acc, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "POST", "/v1/projects/claim/"+strings.Repeat("b2", 16), acc, nil).want(t, 404, "NOT_FOUND")
	c := e.json(t, "POST", "/v1/projects/claim/"+token, acc, nil)
	c.want(t, 200, "")
	if c.data()["projectId"] != pid.String() {
		t.Errorf("claimed %v", c.data())
	}
}
