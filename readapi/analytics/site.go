package analytics

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Recorder sits in front of the site server: it answers the owner link, and hands every page
// view (a GET answered 200 with HTML, or 304 to a navigation) to the pipeline after the response
// is written. It never waits for anything: the hit is copied out of the request and offered.
type Recorder struct {
	pipe   *Pipeline
	owner  *OwnerTokens
	now    func() time.Time
	secure bool
}

// NewRecorder returns the hook; secure marks the owner cookie Secure (sites served over https).
func NewRecorder(pipe *Pipeline, owner *OwnerTokens, now func() time.Time, secure bool) *Recorder {
	return &Recorder{pipe: pipe, owner: owner, now: now, secure: secure}
}

// maxField bounds what a hit keeps of a client-chosen header.
const maxField = 512

// Serve serves r through next as the site slug and records the page view. r is the request as
// the browser sent it (its Host may be a custom domain); next may rewrite it.
func (rec *Recorder) Serve(w http.ResponseWriter, r *http.Request, slug string, next http.Handler) {
	if r.URL.Path == OwnerPath {
		rec.owner.ServeLink(w, r, rec.now(), rec.secure)
		return
	}
	if r.Method != http.MethodGet {
		next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	if !sw.page && !(sw.status == http.StatusNotModified && strings.Contains(r.Header.Get("Accept"), "text/html")) {
		return
	}
	h := Hit{
		Slug: slug, Host: r.Host, Path: clip(r.URL.Path), At: rec.now(), UserAgent: clip(r.UserAgent()),
		Referrer: clip(r.Referer()), RemoteAddr: r.RemoteAddr, ForwardedFor: clip(r.Header.Get("X-Forwarded-For")),
	}
	if strings.Contains(r.Header.Get("Cookie"), OwnerCookie) {
		for _, c := range r.CookiesNamed(OwnerCookie) {
			h.OwnerCookie += c.Value + " "
		}
	}
	rec.pipe.Offer(h)
}

func clip(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

// statusWriter notes the status of a response and whether it is an HTML page, and passes
// everything else through (ReadFrom keeps sendfile for file bodies).
type statusWriter struct {
	http.ResponseWriter
	status int
	page   bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.page = code == http.StatusOK && strings.HasPrefix(w.Header().Get("Content-Type"), "text/html")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
