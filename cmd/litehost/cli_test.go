package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// runCLI runs the litehost command tree in-process against the instance's database.
func runCLI(t *testing.T, s *testServer, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{
		"LITEHOST_DATABASE_URL": s.app.cfg.DatabaseURL,
		"LITEHOST_SECRET":       string(s.app.cfg.Secret),
		"LITEHOST_DATA_DIR":     s.app.cfg.DataDir,
		"LITEHOST_EVENT_STORE":  s.app.cfg.EventStore,
		"LITEHOST_ESDB_URL":     s.app.cfg.ESDBURL,
		"LITEHOST_SMTP_URL":     s.app.cfg.SMTPURL,
		"LITEHOST_DEV":          strconv.FormatBool(s.app.cfg.Dev),
		"LOG_LEVEL":             "warn",
	}
	cmd := newRootCmd(func(k string) string { return env[k] }, &out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func TestAdminSetPlan(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "plan@example.com")["apiKey"].(string)

	out, err := runCLI(t, s, "admin", "set-plan", "Plan@Example.com", "starter")
	if err != nil {
		t.Fatalf("set-plan: %v\n%s", err, out)
	}
	// The CLI's event reaches the read model through the running instance's projector.
	waitFor(t, func() bool {
		r := s.do(http.MethodGet, "/v1/user", nil, bearer(key))
		return r.data(t)["plan"].(map[string]any)["tier"] == "starter"
	})
	if out, err := runCLI(t, s, "admin", "set-plan", "nobody@example.com", "pro"); err == nil || !strings.Contains(out+err.Error(), "no account") {
		t.Errorf("unknown account: %v %s", err, out)
	}
	if out, err := runCLI(t, s, "admin", "set-plan", "plan@example.com", "platinum"); err == nil {
		t.Errorf("unknown tier accepted: %s", out)
	}
	out, err = runCLI(t, s, "projections", "status")
	if err != nil || !strings.Contains(out, "accounts") {
		t.Errorf("projections status: %v\n%s", err, out)
	}
}

// Rebuilding every read model from the log, while the instance runs, gives back the same answers.
func TestProjectionsRebuildCLI(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "rebuild@example.com")["apiKey"].(string)
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Kept"}, []upload{{"index.html", []byte("<p>kept</p>")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id := r.data(t)["projectId"].(string)
	before := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key)).data(t)
	userBefore := s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)

	out, err := runCLI(t, s, "projections", "rebuild")
	if err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	for _, name := range []string{"accounts", "projects", "workspaces", "domains"} {
		if !strings.Contains(out, "rebuilt "+name) {
			t.Errorf("rebuild output lacks %s:\n%s", name, out)
		}
	}
	if _, err := runCLI(t, s, "projections", "rebuild", "no-such-projector"); err == nil {
		t.Error("rebuild of an unknown projector succeeded")
	}
	waitFor(t, func() bool {
		r := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key))
		return r.status == http.StatusOK && equalJSON(r.data(t), before)
	})
	if after := s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t); !equalJSON(after, userBefore) {
		t.Errorf("user after rebuild = %v, before %v", after, userBefore)
	}
	if out, err := runCLI(t, s, "audit", "project", id, "--verify"); err != nil {
		t.Errorf("audit --verify after rebuild: %v\n%s", err, out)
	}
}
