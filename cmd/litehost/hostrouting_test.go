package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// With the API on api.<sites domain>, the API host must answer as the API, never as the site of
// a project that could hold the slug "api"; and no project may take that slug at all.
func TestAPIHostWinsOverSiteSlug(t *testing.T) {
	s, mb := startWithMail(t, "", map[string]string{
		"LITEHOST_SITES_DOMAIN": "sites.test",
		"LITEHOST_PUBLIC_URL":   "http://api.sites.test",
	})
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.sites.test"
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Litehost Connect API") {
		t.Errorf("GET api.sites.test/v1 = %d %s, want the API's own answer", resp.StatusCode, body)
	}

	key := signIn(t, s, mb, "host@example.com")["apiKey"].(string)
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Take over", "slug": "api"},
		[]upload{{"index.html", []byte("<p>mine</p>")}}, bearer(key))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "reserved") {
		t.Errorf("create with slug api = %d %s, want 422 reserved", r.status, r.body)
	}
}
