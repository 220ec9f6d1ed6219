package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/litehost/litehost/docs"
	"github.com/litehost/litehost/events/esdbemu"
	"github.com/litehost/litehost/events/pgtest"
)

// emulators holds one in-repo EventStoreDB emulator per test database, so that several
// instances of one test share their event log as they share PostgreSQL.
var emulators sync.Map // dsn → *esdbemu.Server

// testEnv returns the environment of a test instance on its own database. extra overrides it.
// With LITEHOST_TEST_EVENT_STORE=esdb the instance keeps its events in the gRPC emulator
// (through the real EventStoreDB client), or in a real EventStoreDB at LITEHOST_TEST_ESDB_URL.
func testEnv(t *testing.T, dsn string, extra map[string]string) func(string) string {
	env := map[string]string{
		"LITEHOST_DATABASE_URL": dsn,
		"LITEHOST_SECRET":       "test-secret-test-secret-test-secret-0123456789",
		"LITEHOST_DATA_DIR":     t.TempDir(),
		"LITEHOST_HTTP_ADDR":    "127.0.0.1:0",
		"LOG_LEVEL":             "warn",
		"LITEHOST_DEV":          "true", // tests without a mailbox log their codes
		// New accounts start on free, as the plan-gate tests expect; the trial tests set a trial.
		"LITEHOST_TRIAL": "0",
	}
	if os.Getenv("LITEHOST_TEST_EVENT_STORE") == "esdb" {
		env["LITEHOST_EVENT_STORE"] = "esdb"
		env["LITEHOST_ESDB_URL"] = esdbURL(t, dsn)
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// testServer is one Litehost instance over real HTTP on loopback, with its projectors and
// process managers running, and a client that validates every exchange against openapi.yaml.
type testServer struct {
	t      *testing.T
	app    *app
	srv    *httptest.Server
	router routers.Router
	logs   *syncBuffer
	clock  *testClock
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts an instance on dsn (a fresh database when dsn is empty).
func startServer(t *testing.T, dsn string, extra map[string]string) *testServer {
	t.Helper()
	if dsn == "" {
		dsn = pgtest.NewDatabase(t)
	}
	// Listen first, so the instance knows its public address (site URLs carry the port).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	env := map[string]string{"LITEHOST_PUBLIC_URL": "http://" + l.Addr().String(), "LITEHOST_HTTP_ADDR": l.Addr().String()}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := loadConfig(testEnv(t, dsn, env))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, cancel := context.WithCancel(context.Background())
	clock := &testClock{}
	a, err := openApp(ctx, cfg, logger, clock.now)
	if err != nil {
		cancel()
		t.Fatalf("open app: %v", err)
	}
	srv := httptest.NewUnstartedServer(a.handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	done := make(chan error, 1)
	go func() { done <- a.runBackground(ctx) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("background processes: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("background processes did not stop")
		}
		a.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	doc, err := docs.OpenAPI(t.Context())
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &testServer{t: t, app: a, srv: srv, router: router, logs: logs, clock: clock}
}

// testClock is real time plus an offset that tests move forward to pass cooldowns and expiries
// without sleeping.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

// advance moves the instance's clock forward by d.
func (s *testServer) advance(d time.Duration) {
	s.clock.mu.Lock()
	s.clock.offset += d
	s.clock.mu.Unlock()
}

// response is a finished exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// data returns the "data" object of a success envelope.
func (r response) data(t *testing.T) map[string]any {
	t.Helper()
	d, ok := r.json(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %s", r.body)
	}
	return d
}

// code returns the "code" of an error envelope.
func (r response) code(t *testing.T) string {
	t.Helper()
	c, _ := r.json(t)["code"].(string)
	return c
}

type reqOpt func(*http.Request, *reqOpts)

type reqOpts struct{ skipRequestValidation bool }

func bearer(key string) reqOpt {
	return func(r *http.Request, _ *reqOpts) { r.Header.Set("Authorization", "Bearer "+key) }
}

func header(k, v string) reqOpt {
	return func(r *http.Request, _ *reqOpts) { r.Header.Set(k, v) }
}

// malformed marks a request that breaks the contract on purpose; only its answer is checked.
func malformed() reqOpt { return func(_ *http.Request, o *reqOpts) { o.skipRequestValidation = true } }

// do sends a request; body may be nil, a string (sent raw as JSON) or any value (marshalled).
// The request (unless malformed) and the response are validated against the OpenAPI document.
func (s *testServer) do(method, path string, body any, opts ...reqOpt) response {
	s.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			s.t.Fatalf("marshal: %v", err)
		}
	}
	req, err := http.NewRequest(method, s.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var o reqOpts
	for _, opt := range opts {
		opt(req, &o)
	}
	return s.send(req, raw, o)
}

func (s *testServer) send(req *http.Request, raw []byte, o reqOpts) response {
	s.t.Helper()
	ctx := s.t.Context()
	route, params, routeErr := s.router.FindRoute(req)
	input := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if routeErr == nil && !o.skipRequestValidation {
		vreq := req.Clone(ctx)
		vreq.Body = io.NopCloser(bytes.NewReader(raw))
		input.Request = vreq
		if err := openapi3filter.ValidateRequest(ctx, input); err != nil {
			s.t.Errorf("%s %s: request breaks the OpenAPI contract: %v", req.Method, req.URL.Path, err)
		}
		input.Request = req
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read body: %v", err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	if routeErr != nil {
		// Unknown routes and methods are not in the contract; their envelope is checked here.
		if !strings.Contains(string(b), `"status":"error"`) {
			s.t.Errorf("%s %s: %d without the error envelope: %s", req.Method, req.URL.Path, r.status, b)
		}
		return r
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(b)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		s.t.Errorf("%s %s → %d: response breaks the OpenAPI contract: %v\nbody: %s", req.Method, req.URL.Path, r.status, err, b)
	}
	return r
}

// equalJSON compares two decoded JSON values.
func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func esdbURL(t *testing.T, dsn string) string {
	t.Helper()
	if u := os.Getenv("LITEHOST_TEST_ESDB_URL"); u != "" {
		return u
	}
	if emu, ok := emulators.Load(dsn); ok {
		return emu.(*esdbemu.Server).URL()
	}
	emu, err := esdbemu.Start(context.Background())
	if err != nil {
		t.Fatalf("start EventStoreDB emulator: %v", err)
	}
	emulators.Store(dsn, emu)
	t.Cleanup(func() {
		emulators.Delete(dsn)
		_ = emu.Close()
	})
	return emu.URL()
}

// waitFor polls cond for up to 10 s: for effects of other processes (a CLI's event reaching a
// running instance), never for answers of our own writes, which are read-your-writes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
