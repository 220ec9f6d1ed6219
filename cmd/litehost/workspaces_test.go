package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/litehost/litehost/domain/project"
)

func TestWorkspacesAndDomainsWalkthrough(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "team@example.com")["apiKey"].(string)

	// Free plan: workspaces and domains are paid features.
	if r := s.do(http.MethodGet, "/v1/workspaces", nil, bearer(key)); r.status != http.StatusForbidden || r.code(t) != "FREE_TIER_RESTRICTED" {
		t.Errorf("free workspaces = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/domains", nil, bearer(key)); r.status != http.StatusForbidden || r.code(t) != "FREE_TIER_RESTRICTED" {
		t.Errorf("free domains = %d %s", r.status, r.body)
	}
	if out, err := runCLI(t, s, "admin", "set-plan", "team@example.com", "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "pro"
	})

	// Workspaces: create, rename, validation, and projects created into one.
	r := s.do(http.MethodPost, "/v1/workspaces", map[string]any{"name": "My Team"}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create workspace = %d %s", r.status, r.body)
	}
	ws := r.data(t)["id"].(string)
	if r := s.do(http.MethodPost, "/v1/workspaces", map[string]any{"name": "   "}, bearer(key), malformed()); r.status != http.StatusUnprocessableEntity {
		t.Errorf("blank name = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPatch, "/v1/workspaces/"+ws, map[string]any{"name": "Renamed"}, bearer(key)); r.status != http.StatusOK || r.data(t)["name"] != "Renamed" {
		t.Errorf("rename = %d %s", r.status, r.body)
	}
	var ids []string
	for i := 0; i < 3; i++ {
		r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Team page", "workspaceId": ws},
			[]upload{{"index.html", []byte("<p>team</p>")}}, bearer(key))
		if r.status != http.StatusCreated {
			t.Fatalf("create in workspace = %d %s", r.status, r.body)
		}
		ids = append(ids, r.data(t)["projectId"].(string))
	}
	list := s.do(http.MethodGet, "/v1/workspaces", nil, bearer(key)).data(t)["workspaces"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["projectCount"] != float64(3) {
		t.Errorf("workspaces = %v", list)
	}
	if got := s.do(http.MethodGet, "/v1/projects?workspaceId="+ws, nil, bearer(key)).data(t)["projects"].([]any); len(got) != 3 {
		t.Errorf("projects in workspace = %d", len(got))
	}

	// Another account's view: 404 for the workspace, and it cannot create into it.
	s.advance(61 * time.Second)
	other := signIn(t, s, mb, "outsider@example.com")["apiKey"].(string)
	if out, err := runCLI(t, s, "admin", "set-plan", "outsider@example.com", "starter"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(other)).data(t)["plan"].(map[string]any)["tier"] == "starter"
	})
	if r := s.do(http.MethodPatch, "/v1/workspaces/"+ws, map[string]any{"name": "mine"}, bearer(other)); r.status != http.StatusNotFound {
		t.Errorf("rename another's workspace = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodDelete, "/v1/workspaces/"+ws, nil, bearer(other)); r.status != http.StatusNotFound {
		t.Errorf("delete another's workspace = %d %s", r.status, r.body)
	}

	// Deleting the workspace keeps its projects: each one's own history ends in project.moved.v1.
	if r := s.do(http.MethodDelete, "/v1/workspaces/"+ws, nil, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("delete workspace = %d %s", r.status, r.body)
	}
	for _, id := range ids {
		waitFor(t, func() bool {
			recs, err := s.app.store.ReadStream(t.Context(), project.Stream(id), 0, 100)
			return err == nil && recs[len(recs)-1].Type == "project.moved.v1"
		})
		// The move is a process manager's write, not this request's: wait for its projection.
		waitFor(t, func() bool {
			r := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key))
			return r.status == http.StatusOK && r.data(t)["workspaceId"] == nil
		})
	}

	// Domains: an operator adds one; the owner assigns it; the site answers on <slug>.<domain>.
	if out, err := runCLI(t, s, "admin", "domains", "add", "--owner", "team@example.com", "example.org"); err != nil {
		t.Fatalf("domains add: %v %s", err, out)
	}
	if out, err := runCLI(t, s, "admin", "domains", "add", "--owner", "team@example.com", "--status", "pending_verification", "pending.example.net"); err != nil {
		t.Fatalf("domains add pending: %v %s", err, out)
	}
	var domainID, pendingID string
	waitFor(t, func() bool {
		for _, d := range s.do(http.MethodGet, "/v1/domains", nil, bearer(key)).data(t)["domains"].([]any) {
			switch m := d.(map[string]any); m["domain"] {
			case "example.org":
				domainID = m["id"].(string)
			case "pending.example.net":
				pendingID = m["id"].(string)
			}
		}
		return domainID != "" && pendingID != ""
	})
	if r := s.do(http.MethodPatch, "/v1/projects/"+ids[0], map[string]any{"domainId": pendingID}, bearer(key)); r.status != http.StatusUnprocessableEntity || r.code(t) != "DOMAIN_NOT_ACTIVE" {
		t.Errorf("assign a pending domain = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPatch, "/v1/projects/"+ids[0], map[string]any{"domainId": domainID}, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("assign domain = %d %s", r.status, r.body)
	}
	p := s.do(http.MethodGet, "/v1/projects/"+ids[0], nil, bearer(key)).data(t)
	slug := p["slug"].(string)
	if want := s.app.domainSiteURL()(slug, "example.org"); p["url"] != want {
		t.Errorf("url of a project on a custom domain = %v, want %s", p["url"], want)
	}
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/", nil)
	req.Host = slug + ".example.org"
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("custom-domain site %s = %d", req.Host, resp.StatusCode)
	}
	d := s.do(http.MethodGet, "/v1/domains/"+domainID, nil, bearer(key)).data(t)
	if projs := d["projects"].([]any); len(projs) != 1 || !strings.Contains(projs[0].(map[string]any)["url"].(string), ".example.org") {
		t.Errorf("domain detail = %v", d)
	}
	if r := s.do(http.MethodDelete, "/v1/domains/"+domainID, nil, bearer(key)); r.status != http.StatusConflict || r.code(t) != "DOMAIN_IN_USE" {
		t.Errorf("delete a used domain = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/domains/"+domainID, nil, bearer(other)); r.status != http.StatusNotFound {
		t.Errorf("another's domain = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "example.org"}, bearer(other)); r.status != http.StatusConflict || r.code(t) != "DOMAIN_TAKEN" {
		t.Errorf("taken hostname = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "not a host"}, bearer(other)); r.status != http.StatusUnprocessableEntity {
		t.Errorf("bad hostname = %d %s", r.status, r.body)
	}
	r = s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "mine.example.com"}, bearer(other))
	if r.status != http.StatusCreated || r.data(t)["status"] != "pending_verification" {
		t.Fatalf("add domain = %d %s", r.status, r.body)
	}
	rec := r.data(t)["verification"].(map[string]any)
	if rec["type"] != "TXT" || !strings.HasPrefix(rec["name"].(string), "_litehost-challenge.") {
		t.Errorf("verification record = %v", rec)
	}
}
