package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestClientMistakesNeverAnswer5xx sends malformed ids, bodies and headers to every route of
// the contract: each answer must be a 4xx in the error envelope, never a server error.
func TestClientMistakesNeverAnswer5xx(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "fuzzy@example.com")["apiKey"].(string)
	if out, err := runCLI(t, s, "admin", "set-plan", "fuzzy@example.com", "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "pro"
	})

	ids := []string{"not-a-uuid", "00000000-0000-0000-0000-000000000000", "%00", strings.Repeat("a", 2000), "';DROP TABLE projects;--"}
	bodies := []string{"", "{", "[]", "null", `"x"`, `{"title":123}`, `{"name":{"$gt":""}}`, strings.Repeat("[", 5000), "\x00\xff"}
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/auth/otp/request"}, {http.MethodPost, "/v1/auth/otp/verify"},
		{http.MethodPost, "/v1/auth/refresh"}, {http.MethodPost, "/v1/auth/revoke"},
		{http.MethodGet, "/v1/projects/{id}"}, {http.MethodPatch, "/v1/projects/{id}"}, {http.MethodDelete, "/v1/projects/{id}"},
		{http.MethodPut, "/v1/projects/{id}"}, {http.MethodGet, "/v1/projects/{id}/status"},
		{http.MethodGet, "/v1/projects/{id}/events"},
		{http.MethodPost, "/v1/projects/{id}/archive"}, {http.MethodPost, "/v1/projects/{id}/unarchive"},
		{http.MethodPost, "/v1/projects/{id}/rollback"}, {http.MethodPost, "/v1/projects/claim/{id}"},
		{http.MethodPost, "/v1/projects"}, {http.MethodPost, "/v1/projects/temp"},
		{http.MethodPost, "/v1/workspaces"}, {http.MethodPatch, "/v1/workspaces/{id}"}, {http.MethodDelete, "/v1/workspaces/{id}"},
		{http.MethodGet, "/v1/domains/{id}"}, {http.MethodPost, "/v1/domains"}, {http.MethodPost, "/v1/domains/{id}/verify"},
		{http.MethodDelete, "/v1/domains/{id}"},
	}
	sent := 0
	for _, rt := range routes {
		for _, id := range ids {
			for _, body := range bodies {
				path := strings.ReplaceAll(rt.path, "{id}", id)
				req, err := http.NewRequest(rt.method, s.srv.URL+path, strings.NewReader(body))
				if err != nil {
					continue // the client refuses to send it; so would any other
				}
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.srv.Client().Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", rt.method, path, err)
				}
				resp.Body.Close()
				sent++
				if resp.StatusCode >= 500 {
					t.Errorf("%s %.60s body %.20q → %d", rt.method, path, body, resp.StatusCode)
				}
			}
		}
	}
	if want := len(routes) * len(ids) * len(bodies); sent < want*9/10 {
		t.Errorf("only %d of %d requests were sent", sent, want)
	}
	// Multipart with a broken boundary, and headers that lie.
	for _, ctype := range []string{"multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=x", "text/plain"} {
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/projects", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"../a\"\r\n\r\nhi\r\n"))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", ctype)
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("multipart %q → %d", ctype, resp.StatusCode)
		}
	}
	if logs := s.logs.String(); strings.Contains(logs, "panic") {
		t.Errorf("a handler panicked:\n%s", logs)
	}
}
