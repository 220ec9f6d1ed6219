package readapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

func insertAccount(t *testing.T, pool *pgxpool.Pool, plan string) string {
	t.Helper()
	id := uuid.NewString()
	_, err := pool.Exec(t.Context(), `INSERT INTO accounts (id, email, plan, max_projects, max_storage_bytes,
		max_files_per_project, max_visitors_per_month, created_at, updated_at)
		VALUES ($1, $2, $3, 10, 1000, 200, 1000, now(), now())`, id, id+"@example.com", plan)
	if err != nil {
		t.Fatalf("insert account: %v", err)
	}
	return id
}

// insertProject adds a project with n deployments (version n active) created at at.
func insertProject(t *testing.T, pool *pgxpool.Pool, owner, slug string, at time.Time, n int, set string) string {
	t.Helper()
	id := uuid.NewString()
	var active string
	for v := 1; v <= n; v++ {
		active = uuid.NewString()
		if _, err := pool.Exec(t.Context(), `INSERT INTO deployments (deployment_id, project_id, version, manifest_hash,
			type, index_path, file_count, size_bytes, created_at) VALUES ($1, $2, $3, 'm', 'html', 'index.html', 1, $4, $5)`,
			active, id, v, 100*v, at.Add(time.Duration(v)*time.Minute)); err != nil {
			t.Fatalf("insert deployment: %v", err)
		}
	}
	_, err := pool.Exec(t.Context(), `INSERT INTO projects (id, owner_id, temporary, title, slug, type, status, access,
		no_index, disable_downloads, analytics_enabled, active_deployment_id, manifest_hash, index_path, file_count,
		size_bytes, created_at, updated_at)
		VALUES ($1, $2, false, $3, $3, 'html', 'public', 'public', false, false, true, $4, 'm', 'index.html', 1, 1, $5, $5)`,
		id, owner, slug, active, at)
	if err != nil {
		t.Fatalf("insert project: %v", err)
	}
	if set != "" {
		if _, err := pool.Exec(t.Context(), `UPDATE projects SET `+set+` WHERE id = $1`, id); err != nil {
			t.Fatalf("update project: %v", err)
		}
	}
	return id
}

// testErrors renders the errors the project routes produce, as the composition root does.
func testErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 {
		return
	}
	err := c.Errors[0].Err
	var q readapi.InvalidQuery
	switch {
	case errors.Is(err, readapi.ErrNotFound):
		c.JSON(404, gin.H{"code": "NOT_FOUND"})
	case errors.Is(err, readapi.ErrFreeTier):
		c.JSON(403, gin.H{"code": "FREE_TIER_RESTRICTED"})
	case errors.As(err, &q):
		c.JSON(422, gin.H{"code": "VALIDATION_FAILED", "fields": q})
	default:
		c.JSON(500, gin.H{"code": "SERVER_ERROR", "error": err.Error()})
	}
}

func TestProjectReadRoutes(t *testing.T) {
	pool := pgtest.NewPool(t)
	if err := projections.Migrate(t.Context(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	paid, free, other := insertAccount(t, pool, "pro"), insertAccount(t, pool, "free"), insertAccount(t, pool, "pro")
	base := time.Date(2026, 4, 9, 14, 0, 0, 0, time.UTC)
	oldest := insertProject(t, pool, paid, "oldest", base, 3, "")
	middle := insertProject(t, pool, paid, "middle", base.Add(time.Hour), 1, "archived_at = now()")
	newest := insertProject(t, pool, paid, "newest", base.Add(2*time.Hour), 1, "expired_at = now()")
	freeOne := insertProject(t, pool, free, "free-one", base, 2, "")
	_ = insertProject(t, pool, other, "others", base.Add(3*time.Hour), 1, "")

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(testErrors)
	require := func(c *gin.Context) {
		c.Request = c.Request.WithContext(events.WithPrincipal(c.Request.Context(), events.Principal{AccountID: c.GetHeader("X-Test-Account")}))
	}
	readapi.NewProjects(pool, func(s string) string { return "http://" + s + ".sites.test" }).Register(e.Group("/v1"), require)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	get := func(path, account string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
		req.Header.Set("X-Test-Account", account)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("GET %s: %q: %v", path, b, err)
		}
		return res.StatusCode, body
	}
	ids := func(path string) []string {
		t.Helper()
		status, body := get(path, paid)
		if status != 200 {
			t.Fatalf("GET %s = %d %v", path, status, body)
		}
		var out []string
		for _, p := range body["data"].(map[string]any)["projects"].([]any) {
			out = append(out, p.(map[string]any)["id"].(string))
		}
		return out
	}
	eq := func(name string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s = %v, want %v", name, got, want)
				return
			}
		}
	}
	eq("default", ids("/v1/projects"), []string{newest, oldest})
	eq("archived", ids("/v1/projects?archived=true"), []string{middle})
	eq("all", ids("/v1/projects?archived=all"), []string{newest, middle, oldest})
	eq("page 2", ids("/v1/projects?archived=all&limit=2&offset=2"), []string{oldest})
	eq("workspace", ids("/v1/projects?workspaceId="+uuid.NewString()), nil)
	if _, body := get("/v1/projects?limit=7&offset=1", paid); body["data"].(map[string]any)["limit"] != 7.0 || body["data"].(map[string]any)["offset"] != 1.0 {
		t.Errorf("paging echo = %v", body)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=a", "offset=-1", "archived=no", "workspaceId=x"} {
		if status, _ := get("/v1/projects?"+q, paid); status != 422 {
			t.Errorf("?%s = %d, want 422", q, status)
		}
	}

	status, body := get("/v1/projects/"+newest, paid)
	d, _ := body["data"].(map[string]any)
	if status != 200 || d["status"] != "expired" || d["url"] != "http://newest.sites.test" || d["domainId"] != nil || d["createdAt"] != "2026-04-09T16:00:00.000Z" {
		t.Errorf("get = %d %v", status, body)
	}
	if _, body := get("/v1/projects/"+middle, paid); body["data"].(map[string]any)["archivedAt"] == nil {
		t.Errorf("archived project without archivedAt: %v", body)
	}

	status, body = get("/v1/projects/"+oldest+"/status", paid)
	hist, _ := body["data"].([]any)
	if status != 200 || len(hist) != 3 {
		t.Fatalf("history = %d %v", status, body)
	}
	for i, h := range hist {
		m := h.(map[string]any)
		wantStatus := "ready"
		if i == 0 {
			wantStatus = "active"
		}
		if m["version"] != float64(3-i) || m["status"] != wantStatus || m["sizeBytes"] != float64(100*(3-i)) {
			t.Errorf("history[%d] = %v", i, m)
		}
	}
	if status, _ := get("/v1/projects/"+freeOne+"/status", free); status != 403 {
		t.Errorf("free history = %d, want 403", status)
	}
	if status, _ := get("/v1/projects/"+freeOne, free); status != 200 {
		t.Errorf("free get = %d, want 200", status)
	}
	for _, path := range []string{"/v1/projects/" + oldest, "/v1/projects/" + oldest + "/status", "/v1/projects/nope", "/v1/projects/" + uuid.NewString()} {
		if status, _ := get(path, other); status != 404 {
			t.Errorf("%s as another account = %d, want 404", path, status)
		}
	}
}
