package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServed runs the instance behind the server `litehost serve` builds (timeouts, header
// limit, per-client connection cap) on a loopback port, and returns that address.
func startServed(t *testing.T, extra map[string]string) (*testServer, string) {
	t.Helper()
	s := startServer(t, "", extra)
	l, err := s.app.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.app.httpServer(s.srv.Config.Handler)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s, l.Addr().String()
}

// rawGet sends one keep-alive GET /v1 on c and returns the status line ("" when the server
// closed the connection instead of answering).
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /v1 HTTP/1.1\r\nHost: api.test\r\n\r\n"); err != nil {
		return ""
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return ""
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status
}

func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHeaderLimit(t *testing.T) {
	_, addr := startServed(t, nil)
	get := func(n int) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1", nil)
		req.Header.Set("X-Padding", strings.Repeat("a", n))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET with %d header bytes: %v", n, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(8 << 10); code != http.StatusOK {
		t.Errorf("8 KiB header = %d, want 200", code)
	}
	if code := get(100 << 10); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB header = %d, want 431", code)
	}
}

func TestConnectionsPerClientAreCapped(t *testing.T) {
	const limit = 3
	_, addr := startServed(t, map[string]string{"LITEHOST_MAX_CONNS_PER_CLIENT": fmt.Sprint(limit)})
	var held []net.Conn
	for i := range limit {
		c := dialFrom(t, "127.0.0.1", addr)
		if st := rawGet(t, c, bufio.NewReader(c)); !strings.HasPrefix(st, "200") {
			t.Fatalf("connection %d = %q, want 200", i+1, st)
		}
		held = append(held, c)
	}
	extra := dialFrom(t, "127.0.0.1", addr)
	if st := rawGet(t, extra, bufio.NewReader(extra)); st != "" {
		t.Errorf("connection %d from one client answered %q, want it closed", limit+1, st)
	}
	other := dialFrom(t, "127.0.0.2", addr)
	if st := rawGet(t, other, bufio.NewReader(other)); !strings.HasPrefix(st, "200") {
		t.Errorf("another client = %q, want 200", st)
	}
	// A closed connection gives its slot back.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dialFrom(t, "127.0.0.1", addr)
		if st := rawGet(t, c, bufio.NewReader(c)); strings.HasPrefix(st, "200") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed connection was not given back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dribble sends the headers of a request with a 1000-byte body, then one body byte every 100 ms
// for up to span; it returns how long the server let it go on before answering or closing.
func dribble(t *testing.T, addr, method, path string, span time.Duration) time.Duration {
	t.Helper()
	c := dialFrom(t, "127.0.0.1", addr)
	start := time.Now()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: api.test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", method, path)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c) // returns when the server closes the connection
		close(closed)
	}()
	for time.Since(start) < span {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Write([]byte(" ")); err != nil && !errors.Is(err, net.ErrClosed) {
			return time.Since(start)
		}
	}
	return time.Since(start)
}

// A body sent a byte at a time is cut after the small routes' deadline; an upload route gets a
// deadline scaled by the largest upload.
func TestSlowBodyIsCutAfterItsDeadline(t *testing.T) {
	_, addr := startServed(t, map[string]string{"LITEHOST_READ_TIMEOUT": "1s", "LITEHOST_MAX_UPLOAD_MB": "1"})
	if d := dribble(t, addr, http.MethodPost, "/v1/auth/otp/request", 6*time.Second); d > 3*time.Second {
		t.Errorf("slow body on a small route went on for %v, want it cut after about 1 s", d)
	}
	// 1 s + 1 MiB at 200 KiB/s = 6 s: a 3 s slow upload is still being read.
	if d := dribble(t, addr, http.MethodPost, "/v1/projects/temp", 3*time.Second); d < 3*time.Second {
		t.Errorf("slow upload cut after %v, want its size-scaled deadline", d)
	}
}

// A trusted proxy carries many clients over its connections: it is not capped as one client.
func TestTrustedProxyIsNotCappedAsOneClient(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(inner, 1, parseTrustedProxies([]string{"127.0.0.1/32"}))
	defer l.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	for i := range 3 {
		c := dialFrom(t, "127.0.0.1", l.Addr().String())
		if st := rawGet(t, c, bufio.NewReader(c)); !strings.HasPrefix(st, "200") {
			t.Fatalf("proxy connection %d = %q, want 200", i+1, st)
		}
	}
	c := dialFrom(t, "127.0.0.2", l.Addr().String())
	_ = rawGet(t, c, bufio.NewReader(c))
	if c2 := dialFrom(t, "127.0.0.2", l.Addr().String()); rawGet(t, c2, bufio.NewReader(c2)) != "" {
		t.Error("a second connection of an untrusted client was let through a cap of 1")
	}
}

// A read deadline passing after the body was read must not cancel the request: a long answer
// (here a consistency wait stood in for by a slow handler) keeps its context.
func TestReadDeadlineDoesNotCancelALongAnswer(t *testing.T) {
	a := &app{cfg: Config{ReadTimeout: 300 * time.Millisecond, MaxUploadBytes: 1 << 20}}
	var got []error
	var mu sync.Mutex
	h := a.readDeadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
		mu.Lock()
		got = append(got, r.Context().Err())
		mu.Unlock()
	}))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get("http://" + l.Addr().String() + "/v1/events/stream") },
		func() (*http.Response, error) {
			return http.Post("http://"+l.Addr().String()+"/v1/auth/refresh", "application/json", strings.NewReader(`{}`))
		},
	} {
		resp, err := req()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	for i, err := range got {
		if err != nil {
			t.Errorf("request %d: context ended by the read deadline: %v", i, err)
		}
	}
}
