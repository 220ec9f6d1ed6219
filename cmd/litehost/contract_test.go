package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/litehost/litehost/docs"
)

var ginParam = regexp.MustCompile(`:([A-Za-z]+)`)

// TestEveryRouteIsInTheContract checks both directions: every route the engine serves is in
// docs/openapi.yaml with its method, and every documented operation is served. Path parameter
// names may differ (:id vs {projectId}); their positions must match.
func TestEveryRouteIsInTheContract(t *testing.T) {
	s := startServer(t, "", nil)
	doc, err := docs.OpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	shape := func(p string) string {
		p = ginParam.ReplaceAllString(p, "{}")
		return regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(p, "{}")
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+shape(path)] = true
		}
	}
	served := map[string]bool{}
	for _, r := range s.app.api.Routes() {
		served[r.Method+" "+shape(r.Path)] = true
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("served but not in openapi.yaml:\n%s", strings.Join(missing, "\n"))
	}
	if len(extra) > 0 {
		t.Errorf("in openapi.yaml but not served:\n%s", strings.Join(extra, "\n"))
	}
	if len(served) < 30 {
		t.Errorf("only %d routes found; the scan is broken", len(served))
	}
}
