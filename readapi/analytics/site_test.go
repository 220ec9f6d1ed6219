package analytics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Only page views are offered: a GET answered 200 with HTML, or 304 to a navigation (a browser
// revalidating the page it shows). Assets, errors, HEAD and other methods are not.
func TestRecorderOffersPageViewsOnly(t *testing.T) {
	for _, tc := range []struct {
		name, method, accept, ctype string
		status                      int
		want                        bool
	}{
		{"html page", http.MethodGet, "text/html", "text/html; charset=utf-8", 200, true},
		{"html page, any accept", http.MethodGet, "*/*", "text/html", 200, true},
		{"stylesheet", http.MethodGet, "text/css,*/*;q=0.1", "text/css", 200, false},
		{"image", http.MethodGet, "image/avif,image/webp", "image/png", 200, false},
		{"not found", http.MethodGet, "text/html", "text/plain; charset=utf-8", 404, false},
		{"password prompt", http.MethodGet, "text/html", "text/plain; charset=utf-8", 401, false},
		{"revalidated page", http.MethodGet, "text/html,application/xhtml+xml", "", 304, true},
		{"revalidated asset", http.MethodGet, "*/*", "", 304, false},
		{"head", http.MethodHead, "text/html", "text/html", 200, false},
		{"post", http.MethodPost, "text/html", "text/html", 405, false},
	} {
		p := NewPipeline(nil, PipelineConfig{Buffer: 4}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		rec := NewRecorder(p, nil, time.Now, false)
		site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.ctype != "" {
				w.Header().Set("Content-Type", tc.ctype)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte("x"))
		})
		r := httptest.NewRequest(tc.method, "/", nil)
		r.Header.Set("Accept", tc.accept)
		w := httptest.NewRecorder()
		rec.Serve(w, r, "site", site)
		if w.Code != tc.status {
			t.Errorf("%s: status %d passed through as %d", tc.name, tc.status, w.Code)
		}
		if got := len(p.hits) == 1; got != tc.want {
			t.Errorf("%s: offered = %v, want %v", tc.name, got, tc.want)
		}
	}
}
