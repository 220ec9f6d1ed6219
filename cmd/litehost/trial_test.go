package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/litehost/litehost/events"
)

// planChanges returns the account's plan_changed events.
func planChanges(t *testing.T, s *testServer, accountID string) []events.PlanChanged {
	t.Helper()
	var out []events.PlanChanged
	for _, e := range accountEvents(t, s, accountID) {
		if e, ok := e.(events.PlanChanged); ok {
			out = append(out, e)
		}
	}
	return out
}

// userPlan returns GET /v1/user's data and plan.
func userPlan(t *testing.T, s *testServer, key string) (map[string]any, map[string]any) {
	t.Helper()
	r := s.do(http.MethodGet, "/v1/user", nil, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/user = %d %s", r.status, r.body)
	}
	u := r.data(t)
	return u, u["plan"].(map[string]any)
}

// TestProTrial: a new account is on Pro with trial.endsAt; past the end the trial process, elected
// once across two instances, moves it to free with exactly one plan change; its projects stay
// and are served but count toward the free quota; a plan an operator sets during the trial sticks.
func TestProTrial(t *testing.T) {
	env := map[string]string{"LITEHOST_TRIAL": "168h"}
	s1, mb := startWithMail(t, "", env)
	s2 := startServer(t, s1.app.cfg.DatabaseURL, env)

	key := signIn(t, s1, mb, "trial@example.com")["apiKey"].(string)
	u, plan := userPlan(t, s2, key)
	accountID := u["id"].(string)
	trial, _ := plan["trial"].(map[string]any)
	if plan["tier"] != "pro" || trial == nil {
		t.Fatalf("new account plan = %v", plan)
	}
	endsAt, _ := time.Parse(time.RFC3339, trial["endsAt"].(string))
	if got := endsAt.Sub(s1.clock.now()); got < 7*day-time.Minute || got > 7*day {
		t.Errorf("trial ends in %s, want 7 days", got)
	}
	advanceAll(61*time.Second, s1, s2)
	setKey := signIn(t, s1, mb, "operator-set@example.com")["apiKey"].(string)
	if out, err := runCLI(t, s1, "admin", "set-plan", "operator-set@example.com", "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool { _, p := userPlan(t, s1, setKey); return p["trial"] == nil })

	// During the trial: more projects than free allows (3).
	var ids []string
	for _, title := range []string{"a", "b", "c", "d"} {
		r := s1.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Trial " + title},
			[]upload{{"index.html", []byte("<h1>" + title + "</h1>")}}, bearer(key))
		if r.status != http.StatusCreated {
			t.Fatalf("create during trial = %d %s", r.status, r.body)
		}
		ids = append(ids, r.data(t)["projectId"].(string))
	}

	// Not a moment early.
	advanceAll(7*day-2*time.Minute, s1, s2)
	time.Sleep(1500 * time.Millisecond)
	if _, p := userPlan(t, s1, key); p["tier"] != "pro" {
		t.Fatalf("plan before the trial's end = %v", p)
	}

	advanceAll(2*time.Minute, s1, s2)
	waitFor(t, func() bool { _, p := userPlan(t, s2, key); return p["tier"] == "free" && p["trial"] == nil })
	time.Sleep(2500 * time.Millisecond) // more rounds on both instances append nothing more
	changes := planChanges(t, s1, accountID)
	if len(changes) != 1 || changes[0].Plan != "free" || changes[0].PreviousPlan != "pro" {
		t.Errorf("plan changes after the trial = %+v, want one pro → free", changes)
	}

	// Nothing is deleted: the projects are still there and served, and count toward the quota.
	for _, id := range ids {
		if r := s2.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key)); r.status != http.StatusOK {
			t.Errorf("project after the trial = %d %s", r.status, r.body)
		}
	}
	r := s1.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "After"},
		[]upload{{"index.html", []byte("x")}}, bearer(key))
	if r.status != http.StatusForbidden || r.code(t) != "PROJECT_LIMIT_REACHED" {
		t.Errorf("create over the free limit after the trial = %d %s", r.status, r.body)
	}
	if r := s1.do(http.MethodGet, "/v1/projects/"+ids[0]+"/status", nil, bearer(key)); r.status != http.StatusForbidden {
		t.Errorf("paid-only feature after the trial = %d %s", r.status, r.body)
	}

	// The operator's plan stuck.
	if _, p := userPlan(t, s1, setKey); p["tier"] != "pro" || p["trial"] != nil {
		t.Errorf("operator-set plan after the trial's end = %v", p)
	}
}

// TestNoTrialStartsOnFree: LITEHOST_TRIAL=0 (the test default) starts new accounts on free.
func TestNoTrialStartsOnFree(t *testing.T) {
	s, mb := startWithMail(t, "", map[string]string{"LITEHOST_TRIAL": "0"})
	key := signIn(t, s, mb, "free@example.com")["apiKey"].(string)
	if _, p := userPlan(t, s, key); p["tier"] != "free" || p["trial"] != nil {
		t.Errorf("plan with LITEHOST_TRIAL=0 = %v", p)
	}
}
