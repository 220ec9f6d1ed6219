package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/litehost/litehost/commands/forwarder"
	"github.com/litehost/litehost/events"
)

const testAdminToken = "operator-token-0123456789"

// sseMessage is one Server-Sent Events message.
type sseMessage struct {
	id, event, data string
}

// sseClient reads a stream over a real HTTP connection on loopback.
type sseClient struct {
	resp     *http.Response
	messages chan sseMessage
	comments chan string
}

// openSSE opens GET path with the given headers; it fails the test unless the answer is a 200
// event stream. The connection is closed at cleanup.
func openSSE(t *testing.T, s *testServer, path string, headers map[string]string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{resp: resp, messages: make(chan sseMessage, 100), comments: make(chan string, 100)}
	go func() {
		defer close(c.messages)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m != (sseMessage{}) {
					c.messages <- m
				}
				m = sseMessage{}
			case strings.HasPrefix(line, ":"):
				select {
				case c.comments <- strings.TrimSpace(line[1:]):
				default:
				}
			default:
				field, value, _ := strings.Cut(line, ":")
				value = strings.TrimPrefix(value, " ")
				switch field {
				case "id":
					m.id = value
				case "event":
					m.event = value
				case "data":
					m.data = value
				}
			}
		}
	}()
	return c
}

// next returns the next message, failing after 10 s.
func (c *sseClient) next(t *testing.T) sseMessage {
	t.Helper()
	select {
	case m, ok := <-c.messages:
		if !ok {
			t.Fatal("stream ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
	}
	return sseMessage{}
}

// none checks that no message arrives for a moment.
func (c *sseClient) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.messages:
		t.Errorf("unexpected message %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

// appendEvent appends one typed event to stream directly in the instance's store.
func appendEvent(t *testing.T, s *testServer, stream string, ev events.Event) events.AppendResult {
	t.Helper()
	md := events.Metadata{CorrelationID: uuid.NewString(), CausationID: uuid.NewString(), Actor: "system:test"}
	data, err := events.Encode(ev, uuid.New(), md)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	res, err := s.app.store.Append(t.Context(), stream, events.Any(), []events.EventData{data})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// seed appends two workspace events and two slug events, interleaved, and returns their types
// in log order.
func seed(t *testing.T, s *testServer) []string {
	t.Helper()
	ws, now := uuid.NewString(), time.Now().UTC()
	appendEvent(t, s, "workspace-"+ws, events.WorkspaceCreated{WorkspaceID: ws, OwnerID: uuid.NewString(), Name: "One", At: now})
	appendEvent(t, s, "slug-one", events.SlugReserved{Slug: "one", ProjectID: uuid.NewString(), At: now})
	appendEvent(t, s, "workspace-"+ws, events.WorkspaceRenamed{WorkspaceID: ws, Name: "Two", PreviousName: "One", At: now})
	appendEvent(t, s, "slug-one", events.SlugReleased{Slug: "one", ProjectID: uuid.NewString(), At: now})
	return []string{events.TypeWorkspaceCreated, events.TypeSlugReserved, events.TypeWorkspaceRenamed, events.TypeSlugReleased}
}

func TestEventStreamDeliversResumesAndFilters(t *testing.T) {
	s := startServer(t, "", map[string]string{"LITEHOST_ADMIN_TOKEN": testAdminToken})
	auth := map[string]string{"Authorization": "Bearer " + testAdminToken}
	types := seed(t, s)

	all := openSSE(t, s, "/v1/events/stream", auth)
	var got []sseMessage
	for i, want := range types {
		m := all.next(t)
		got = append(got, m)
		if m.event != want {
			t.Errorf("message %d: event %q, want %q", i, m.event, want)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(m.data), &d); err != nil {
			t.Fatalf("message %d: data is not JSON: %v\n%s", i, err, m.data)
		}
		for _, k := range []string{"id", "stream", "version", "type", "position", "createdAt", "data", "metadata"} {
			if _, ok := d[k]; !ok {
				t.Errorf("message %d: data has no %q: %s", i, k, m.data)
			}
		}
		if d["type"] != want || d["position"] != m.id {
			t.Errorf("message %d: type %v position %v, want %s and the SSE id %s", i, d["type"], d["position"], want, m.id)
		}
		if md, _ := d["metadata"].(map[string]any); md["actor"] != "system:test" {
			t.Errorf("message %d: metadata %v", i, d["metadata"])
		}
		if _, err := events.ParsePosition(m.id); err != nil {
			t.Errorf("message %d: id %q: %v", i, m.id, err)
		}
	}
	all.none(t)
	// Live: an event appended while the stream is open arrives too.
	appendEvent(t, s, "slug-two", events.SlugReserved{Slug: "two", ProjectID: uuid.NewString(), At: time.Now().UTC()})
	if m := all.next(t); m.event != events.TypeSlugReserved || !strings.Contains(m.data, `"slug":"two"`) {
		t.Errorf("live event: %+v", m)
	}

	// Last-Event-ID resumes after that event, and wins over from.
	resumed := openSSE(t, s, "/v1/events/stream?from=0/0", map[string]string{
		"Authorization": "Bearer " + testAdminToken, "Last-Event-ID": got[1].id,
	})
	for _, want := range []string{types[2], types[3], events.TypeSlugReserved} {
		if m := resumed.next(t); m.event != want {
			t.Errorf("resumed: event %q, want %q", m.event, want)
		}
	}
	resumed.none(t)

	// from works alone, and types filters by prefix.
	filtered := openSSE(t, s, "/v1/events/stream?types=workspace.&from="+got[0].id, auth)
	if m := filtered.next(t); m.event != events.TypeWorkspaceRenamed || m.id != got[2].id {
		t.Errorf("filtered: %+v, want the rename at %s", m, got[2].id)
	}
	filtered.none(t)
	two := openSSE(t, s, "/v1/events/stream?types=workspace.created,slug.released", auth)
	for _, want := range []string{events.TypeWorkspaceCreated, events.TypeSlugReleased} {
		if m := two.next(t); m.event != want {
			t.Errorf("two prefixes: event %q, want %q", m.event, want)
		}
	}
	two.none(t)
}

func TestEventStreamRefusals(t *testing.T) {
	off := startServer(t, "", nil)
	if r := off.do(http.MethodGet, "/v1/events/stream", nil, bearer(testAdminToken)); r.status != http.StatusNotFound || r.code(t) != "NOT_FOUND" {
		t.Errorf("without LITEHOST_ADMIN_TOKEN: %d %s", r.status, r.body)
	}

	s := startServer(t, "", map[string]string{"LITEHOST_ADMIN_TOKEN": testAdminToken})
	tests := []struct {
		name   string
		path   string
		opts   []reqOpt
		status int
		code   string
	}{
		{"no token", "/v1/events/stream", nil, http.StatusUnauthorized, "ADMIN_TOKEN_MISSING"},
		{"wrong token", "/v1/events/stream", []reqOpt{bearer(testAdminToken + "x")}, http.StatusUnauthorized, "ADMIN_TOKEN_INVALID"},
		{"prefix of the token", "/v1/events/stream", []reqOpt{bearer(testAdminToken[:10])}, http.StatusUnauthorized, "ADMIN_TOKEN_INVALID"},
		{"not bearer", "/v1/events/stream", []reqOpt{header("Authorization", "Basic "+testAdminToken)}, http.StatusUnauthorized, "ADMIN_TOKEN_INVALID"},
		{"bad from", "/v1/events/stream?from=12", []reqOpt{bearer(testAdminToken), malformed()}, http.StatusUnprocessableEntity, "VALIDATION_FAILED"},
		{"bad Last-Event-ID", "/v1/events/stream", []reqOpt{bearer(testAdminToken), header("Last-Event-ID", "x/y")}, http.StatusUnprocessableEntity, "VALIDATION_FAILED"},
		{"bad types", "/v1/events/stream?types=project.*", []reqOpt{bearer(testAdminToken), malformed()}, http.StatusUnprocessableEntity, "VALIDATION_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(http.MethodGet, tt.path, nil, tt.opts...)
			if r.status != tt.status || r.code(t) != tt.code {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if tt.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestEventsTail(t *testing.T) {
	s := startServer(t, "", nil)
	types := seed(t, s)

	out, err := runCLI(t, s, "events", "tail", "--follow=false")
	if err != nil {
		t.Fatalf("tail: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(types) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(types), out)
	}
	for i, want := range types {
		if f := strings.Fields(lines[i]); len(f) != 5 || f[3] != want || f[4] != "system:test" {
			t.Errorf("line %d: %q, want type %s and actor system:test", i, lines[i], want)
		}
	}
	first := strings.Fields(lines[0])[0]

	out, err = runCLI(t, s, "events", "tail", "--follow=false", "--json", "--types", "workspace.", "--from", first)
	if err != nil {
		t.Fatalf("tail --json: %v\n%s", err, out)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want only the rename after %s:\n%s", first, out)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil || ev["type"] != events.TypeWorkspaceRenamed {
		t.Errorf("json line %q: %v", lines[0], err)
	}
	if d, _ := ev["data"].(map[string]any); d["name"] != "Two" {
		t.Errorf("json data: %v", ev["data"])
	}

	for _, args := range [][]string{{"--from", "nope"}, {"--types", "a*"}} {
		if out, err := runCLI(t, s, append([]string{"events", "tail", "--follow=false"}, args...)...); err == nil {
			t.Errorf("tail %v accepted:\n%s", args, out)
		}
	}
}

func TestEventsTailFollows(t *testing.T) {
	s := startServer(t, "", nil)
	seed(t, s)
	env := map[string]string{
		"LITEHOST_DATABASE_URL": s.app.cfg.DatabaseURL, "LITEHOST_SECRET": string(s.app.cfg.Secret),
		"LITEHOST_DATA_DIR": s.app.cfg.DataDir, "LITEHOST_EVENT_STORE": s.app.cfg.EventStore,
		"LITEHOST_ESDB_URL": s.app.cfg.ESDBURL, "LOG_LEVEL": "warn",
	}
	out := &syncBuffer{}
	var errOut bytes.Buffer
	cmd := newRootCmd(func(k string) string { return env[k] }, out, &errOut)
	cmd.SetArgs([]string{"events", "tail", "--types", "slug."})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	waitFor(t, func() bool { return strings.Count(out.String(), "\n") == 2 })
	appendEvent(t, s, "slug-live", events.SlugReserved{Slug: "live", ProjectID: uuid.NewString(), At: time.Now().UTC()})
	waitFor(t, func() bool { return strings.Contains(out.String(), "slug-live@0") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tail ended with %v\n%s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop after interrupt")
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d lines, want 3:\n%s", n, out.String())
	}
}

// TestNATSForwarderIsWired checks that serve runs the forwarder when LITEHOST_NATS_URL is set:
// an event reaches the real NATS server's LITEHOST_EVENTS stream. The event's category is unique
// to the test, so its subject is too; the test purges that subject afterwards.
func TestNATSForwarderIsWired(t *testing.T) {
	s := startServer(t, "", map[string]string{"LITEHOST_NATS_URL": "nats://127.0.0.1:4222"})
	category := "fwdtest" + strings.ReplaceAll(uuid.NewString(), "-", "")
	subject := "litehost.events." + category + "." + events.TypeSlugReserved
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if st, err := js.Stream(ctx, forwarder.DefaultStream); err == nil {
			_ = st.Purge(ctx, jetstream.WithPurgeSubject(subject))
		}
	})
	res := appendEvent(t, s, category+"-1", events.SlugReserved{Slug: "fwd", ProjectID: uuid.NewString(), At: time.Now().UTC()})
	var msg *jetstream.RawStreamMsg
	waitFor(t, func() bool {
		st, err := js.Stream(t.Context(), forwarder.DefaultStream)
		if err != nil {
			return false
		}
		msg, err = st.GetLastMsgForSubject(t.Context(), subject)
		return err == nil
	})
	if got := msg.Header.Get(forwarder.HeaderPosition); got != res.Position.String() {
		t.Errorf("position header %q, want %s", got, res.Position)
	}
}
