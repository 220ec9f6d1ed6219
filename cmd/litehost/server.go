package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/litehost/litehost/internal/clientip"
)

// Limits of the HTTP server (DESIGN §10). A request may hold a connection only as long as its
// body needs: seconds for the small JSON bodies, and for the upload routes a time scaled by the
// largest upload allowed, so a slow sender (slowloris) cannot park a connection and its buffers
// for the 10 minutes an upload may take.
const (
	maxHeaderBytes    = 64 << 10 // Go's default is 1 MiB; no honest request needs more than a few KiB
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	writeTimeout      = 10 * time.Minute // a site file or an upload's answer on a slow link
	// uploadMinRate is the slowest upload the deadline allows for: 200 KiB/s (1.6 Mbit/s) moves
	// the default 100 MiB in about 8.5 minutes.
	uploadMinRate = 200 << 10
)

// httpServer is the server of `litehost serve` for h (a.handler()).
func (a *app) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Addr:              a.cfg.HTTPAddr,
		Handler:           a.readDeadlines(h),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		// No server-wide ReadTimeout: readDeadlines sets one per request, by route.
		WriteTimeout: writeTimeout,
		IdleTimeout:  idleTimeout,
	}
}

// readDeadlines gives every request body a deadline, from when its headers were read:
// LITEHOST_READ_TIMEOUT for ordinary routes, plus the time the largest allowed upload takes at
// uploadMinRate on the upload routes. The deadline is lifted once the body has been read to its
// end: net/http keeps a background read on the connection to notice a client going away, and a
// deadline passing under it cancels the request's context, which would end a long answer (the
// event stream, a large site file, a consistency wait) that has nothing left to read. A request
// without a body gets no deadline for the same reason (ReadHeaderTimeout covered its headers).
func (a *app) readDeadlines(h http.Handler) http.Handler {
	small := a.cfg.ReadTimeout
	upload := small + time.Duration(a.cfg.MaxUploadBytes/uploadMinRate)*time.Second
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		d := small
		if isUploadRoute(r) && !a.isSiteHost(r.Host) {
			d = upload
		}
		rc := http.NewResponseController(w)
		// An error means the writer cannot set deadlines (a test recorder): nothing to bound.
		if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body has been read to its end.
type deadlineBody struct {
	io.ReadCloser
	once sync.Once
	lift func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.lift)
	}
	return n, err
}

// isSiteHost reports whether a request goes to a hosted site rather than the API (sites take
// no bodies, so their deadline is always the small one).
func (a *app) isSiteHost(host string) bool {
	if a.isAPIHost(host) {
		return false
	}
	_, ok := a.sites.Slug(host)
	return ok
}

// isUploadRoute reports the routes that take project files: POST /v1/projects,
// POST /v1/projects/temp and PUT /v1/projects/{id}.
func isUploadRoute(r *http.Request) bool {
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch r.Method {
	case http.MethodPost:
		return p == "/v1/projects" || p == "/v1/projects/temp"
	case http.MethodPut:
		rest, ok := strings.CutPrefix(p, "/v1/projects/")
		return ok && rest != "" && !strings.Contains(rest, "/")
	}
	return false
}

// connLimiter caps the open connections of each client (clientip.Group of the TCP peer: an IPv4
// address or an IPv6 /64). A connection over the cap is closed at once, before it costs a
// goroutine or a buffer. Peers in LITEHOST_TRUSTED_PROXIES carry many clients and are not capped
// here: the proxy in front must cap per client, as only it sees them.
type connLimiter struct {
	net.Listener
	max    int
	exempt trustedProxies

	mu   sync.Mutex
	open map[string]int
}

func newConnLimiter(l net.Listener, max int, exempt trustedProxies) *connLimiter {
	return &connLimiter{Listener: l, max: max, exempt: exempt, open: map[string]int{}}
}

// Accept returns the next connection within its client's cap, closing those over it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, capped := l.client(c.RemoteAddr())
		if !capped {
			return c, nil
		}
		l.mu.Lock()
		over := l.open[key] >= l.max
		if !over {
			l.open[key]++
		}
		l.mu.Unlock()
		if over {
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, done: func() { l.release(key) }}, nil
	}
}

func (l *connLimiter) client(addr net.Addr) (string, bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || l.max <= 0 {
		return "", false
	}
	ip := tcp.AddrPort().Addr()
	if l.exempt.trusted(ip) {
		return "", false
	}
	return clientip.Group(ip.String()), true
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// countedConn gives its slot back once, however often it is closed.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

// CloseWrite passes a half-close through, so net/http can still flush an error answer (431,
// 400) before closing, as it does on a bare TCP connection.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// listen opens the server's listener on addr with the per-client connection cap.
func (a *app) listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return newConnLimiter(l, a.cfg.MaxConnsPerClient, parseTrustedProxies(a.cfg.TrustedProxies)), nil
}
