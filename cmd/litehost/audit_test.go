package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
)

// auditEvents fetches one page of a project's events as the caller of key.
func auditEvents(t *testing.T, s *testServer, id, key, query string) (events []map[string]any, next any) {
	t.Helper()
	r := s.do(http.MethodGet, "/v1/projects/"+id+"/events"+query, nil, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("events%s = %d %s", query, r.status, r.body)
	}
	d := r.data(t)
	for _, e := range d["events"].([]any) {
		events = append(events, e.(map[string]any))
	}
	return events, d["nextFrom"]
}

func TestProjectAuditLogAndReplay(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "auditor@example.com")["apiKey"].(string)
	s.advance(61 * time.Second)
	otherKey := signIn(t, s, mb, "stranger@example.com")["apiKey"].(string)
	accountID := s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["id"].(string)
	actor := events.AccountActor(accountID)
	if out, err := runCLI(t, s, "admin", "set-plan", "auditor@example.com", "starter"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "starter"
	})

	// create (v1) → push (v2) → rollback to v1 (v3) → password → archive, each with its own request ID.
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Audited"},
		[]upload{{"index.html", []byte("<h1>v1</h1>")}}, bearer(key), header("X-Request-ID", "req-create"))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id := r.data(t)["projectId"].(string)
	v1 := historyOf(t, s, id, key)[0]["deploymentId"].(string)
	beforePush := s.clock.now()
	s.advance(2 * time.Second)
	r = s.doUpload(http.MethodPut, "/v1/projects/"+id, nil, []upload{{"index.html", []byte("<h1>version two</h1>")}},
		bearer(key), header("X-Request-ID", "req-push"))
	if r.status != http.StatusOK {
		t.Fatalf("push = %d %s", r.status, r.body)
	}
	v2 := r.data(t)["deploymentId"].(string)
	r = s.do(http.MethodPost, "/v1/projects/"+id+"/rollback", map[string]any{"deploymentId": v1}, bearer(key),
		header("X-Request-ID", "req-rollback"))
	if r.status != http.StatusOK {
		t.Fatalf("rollback = %d %s", r.status, r.body)
	}
	v3 := r.data(t)["deploymentId"].(string)
	r = s.do(http.MethodPatch, "/v1/projects/"+id, map[string]any{"access": "password", "password": "hunter22"},
		bearer(key), header("X-Request-ID", "req-patch"))
	if r.status != http.StatusOK {
		t.Fatalf("patch = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/projects/"+id+"/archive", nil, bearer(key), header("X-Request-ID", "req-archive")); r.status != http.StatusOK {
		t.Fatalf("archive = %d %s", r.status, r.body)
	}

	// The whole log, in order, with who did it and as part of which request.
	evs, next := auditEvents(t, s, id, key, "")
	want := []struct{ typ, req string }{
		{events.TypeProjectCreated, "req-create"},
		{events.TypeProjectVersionPushed, "req-push"},
		{events.TypeProjectVersionPushed, "req-rollback"},
		{events.TypeProjectSettingsUpdated, "req-patch"},
		{events.TypeProjectArchived, "req-archive"},
	}
	if len(evs) != len(want) || next != nil {
		t.Fatalf("events = %d (next %v), want %d: %v", len(evs), next, len(want), evs)
	}
	var lastPos events.Position
	for i, w := range want {
		e := evs[i]
		md := e["metadata"].(map[string]any)
		if e["type"] != w.typ || e["version"] != float64(i) || md["actor"] != actor || md["requestId"] != w.req {
			t.Errorf("event %d = %v %v, metadata %v; want %s by %s in %s", i, e["type"], e["version"], md, w.typ, actor, w.req)
		}
		// The public contract: no client address or user agent leaves, even to the owner.
		if _, ip := md["clientIp"]; ip || md["userAgent"] != nil || md["clientNetwork"] != nil || md["correlationId"] == "" {
			t.Errorf("event %d metadata = %v", i, md)
		}
		pos, err := events.ParsePosition(e["position"].(string))
		if err != nil || pos.Compare(lastPos) <= 0 {
			t.Errorf("event %d position %v after %v (%v)", i, e["position"], lastPos, err)
		}
		lastPos = pos
		if uuid.Validate(e["id"].(string)) != nil {
			t.Errorf("event %d id = %v", i, e["id"])
		}
	}
	if dep := evs[2]["data"].(map[string]any)["deployment"].(map[string]any); dep["deploymentId"] != v3 || dep["rollbackOf"] != v1 || dep["version"] != float64(3) {
		t.Errorf("rollback payload = %v", dep)
	}
	settings := evs[3]["data"].(map[string]any)["settings"].(map[string]any)
	if _, hash := settings["passwordHash"]; settings["access"] != "password" || hash || settings["passwordProtected"] != true {
		t.Errorf("settings payload = %v", settings)
	}

	// Pages follow nextFrom; past the end is an empty last page.
	page, next := auditEvents(t, s, id, key, "?limit=2")
	if len(page) != 2 || next != float64(2) || page[1]["version"] != float64(1) {
		t.Errorf("page 1 = %v next %v", page, next)
	}
	page, next = auditEvents(t, s, id, key, "?from=2&limit=2")
	if len(page) != 2 || next != float64(4) || page[0]["version"] != float64(2) {
		t.Errorf("page 2 = %v next %v", page, next)
	}
	page, next = auditEvents(t, s, id, key, "?from=4&limit=2")
	if len(page) != 1 || next != nil || page[0]["type"] != events.TypeProjectArchived {
		t.Errorf("page 3 = %v next %v", page, next)
	}
	if page, next = auditEvents(t, s, id, key, "?from=40"); len(page) != 0 || next != nil {
		t.Errorf("past the end = %v next %v", page, next)
	}

	// Tenancy and bad input.
	for _, c := range []struct {
		path, key string
		status    int
		code      string
	}{
		{"/v1/projects/" + id + "/events", otherKey, http.StatusNotFound, "NOT_FOUND"},
		{"/v1/projects/" + uuid.NewString() + "/events", key, http.StatusNotFound, "NOT_FOUND"},
		{"/v1/projects/not-a-uuid/events", key, http.StatusNotFound, "NOT_FOUND"},
		{"/v1/projects/" + id + "/events", "", http.StatusUnauthorized, "API_KEY_MISSING"},
	} {
		var opts []reqOpt
		if c.key != "" {
			opts = append(opts, bearer(c.key))
		}
		if r := s.do(http.MethodGet, c.path, nil, opts...); r.status != c.status || r.code(t) != c.code {
			t.Errorf("GET %s = %d %s, want %d %s", c.path, r.status, r.body, c.status, c.code)
		}
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "from=-1", "from=abc"} {
		r := s.do(http.MethodGet, "/v1/projects/"+id+"/events?"+q, nil, bearer(key), malformed())
		if r.status != http.StatusUnprocessableEntity || r.code(t) != "VALIDATION_FAILED" {
			t.Errorf("?%s = %d %s", q, r.status, r.body)
		}
	}

	// The CLI replays the same history: three deployments, v3 active, with actors and requests.
	out, err := runCLI(t, s, "audit", "project", id)
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	for _, w := range []string{v1, v2, v3, actor, "req-push", "req-rollback", "127.0.0.0/24", "archived",
		events.TypeProjectArchived, events.TypeProjectSettingsUpdated} {
		if !strings.Contains(out, w) {
			t.Errorf("audit output lacks %q:\n%s", w, out)
		}
	}
	if line := lineWith(out, events.TypeProjectSettingsUpdated); !strings.Contains(line, "changed ") || !strings.Contains(line, "access") {
		t.Errorf("settings line = %q", line)
	}
	if line := lineWith(out, v3); !strings.Contains(line, " active ") {
		t.Errorf("v3 line = %q", line)
	}
	if line := lineWith(out, v2); !strings.Contains(line, " ready ") {
		t.Errorf("v2 line = %q", line)
	}

	// As of before the push: only version 1, and it is the active one; the project was live.
	out, err = runCLI(t, s, "audit", "project", id, "--as-of", beforePush.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatalf("audit --as-of: %v\n%s", err, out)
	}
	if strings.Contains(out, v2) || strings.Contains(out, v3) || !strings.Contains(lineWith(out, v1), " active ") ||
		!strings.Contains(out, ": live") || strings.Contains(out, events.TypeProjectArchived) {
		t.Errorf("audit as of before the push:\n%s", out)
	}
	if out, err := runCLI(t, s, "audit", "project", id, "--as-of", "2001-01-01T00:00:00Z"); err == nil || !strings.Contains(err.Error(), "did not exist") {
		t.Errorf("as of before creation: %v\n%s", err, out)
	}

	// JSON for machines.
	out, err = runCLI(t, s, "audit", "project", id, "--json")
	if err != nil {
		t.Fatalf("audit --json: %v\n%s", err, out)
	}
	var rep struct {
		State       string
		Deployments []struct {
			Version      int
			DeploymentID string
			Status       string
			SizeBytes    int64
			Who          struct{ Actor, ClientNetwork, RequestID string }
		}
		Events []struct{ Type string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit --json output: %v\n%s", err, out)
	}
	if rep.State != "archived" || len(rep.Deployments) != 3 || rep.Deployments[0].DeploymentID != v3 ||
		rep.Deployments[0].Status != "active" || rep.Deployments[1].Who.RequestID != "req-push" ||
		rep.Deployments[1].Who.Actor != actor || rep.Deployments[1].Who.ClientNetwork != "127.0.0.0/24" || rep.Deployments[1].SizeBytes != int64(len("<h1>version two</h1>")) ||
		len(rep.Events) != 3 {
		t.Errorf("audit --json = %+v", rep)
	}

	// --verify: the read model agrees; after corrupting it, every difference is named.
	if out, err := runCLI(t, s, "audit", "project", id, "--verify"); err != nil || !strings.Contains(out, "matches") {
		t.Fatalf("verify on a sound read model: %v\n%s", err, out)
	}
	if _, err := s.app.pool.Exec(t.Context(), `UPDATE deployments SET size_bytes = 1 WHERE project_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.pool.Exec(t.Context(), `UPDATE projects SET archived_at = NULL WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, s, "audit", "project", id, "--verify")
	if err == nil {
		t.Fatalf("verify passed on a corrupted read model:\n%s", out)
	}
	for _, w := range []string{
		"deployments[" + v2 + "] (version 2).size_bytes: read model 1, log " + strconv.Itoa(len("<h1>version two</h1>")),
		"deployments[" + v1 + "] (version 1).size_bytes: read model 1",
		"projects.archived_at: read model null",
		"4 difference(s)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("verify output lacks %q:\n%s", w, out)
		}
	}
	out, err = runCLI(t, s, "audit", "project", id, "--verify", "--json")
	var vrep struct{ Verify struct{ OK bool } }
	if err == nil || json.Unmarshal([]byte(out), &vrep) != nil || vrep.Verify.OK {
		t.Errorf("verify --json on a corrupted read model: %v\n%s", err, out)
	}
	if _, err := s.app.pool.Exec(t.Context(), `DELETE FROM deployments WHERE deployment_id = $1`, v3); err != nil {
		t.Fatal(err)
	}
	if out, _ := runCLI(t, s, "audit", "project", id, "--verify"); !strings.Contains(out, "deployments["+v3+"] (version 3): row missing") {
		t.Errorf("verify with a missing row:\n%s", out)
	}

	// Bad arguments.
	if out, err := runCLI(t, s, "audit", "project", uuid.NewString()); err == nil || !strings.Contains(err.Error(), "no project") {
		t.Errorf("unknown project: %v %s", err, out)
	}
	if _, err := runCLI(t, s, "audit", "project", "nope"); err == nil {
		t.Error("non-UUID id accepted")
	}
	if _, err := runCLI(t, s, "audit", "project", id, "--as-of", "yesterday"); err == nil {
		t.Error("bad --as-of accepted")
	}
}

// TestAuditDeletedProject: a deleted project keeps its audit trail for its owner, and --verify
// expects its rows gone.
func TestAuditDeletedProject(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "gone@example.com")["apiKey"].(string)
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Short lived"},
		[]upload{{"index.html", []byte("bye")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id := r.data(t)["projectId"].(string)
	if r := s.do(http.MethodDelete, "/v1/projects/"+id, nil, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	evs, _ := auditEvents(t, s, id, key, "")
	if len(evs) != 2 || evs[1]["type"] != events.TypeProjectDeleted {
		t.Errorf("events of a deleted project = %v", evs)
	}
	out, err := runCLI(t, s, "audit", "project", id, "--verify")
	if err != nil || !strings.Contains(out, ": deleted") || !strings.Contains(out, "matches") {
		t.Errorf("audit --verify of a deleted project: %v\n%s", err, out)
	}
}

// lineWith returns the first line of out that contains s.
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
