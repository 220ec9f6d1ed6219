package forwarder_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/forwarder"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
)

// natsURL is the real NATS server with JetStream that the test environment always runs.
const natsURL = "nats://127.0.0.1:4222"

type world struct {
	pool   *pgxpool.Pool
	store  *pgstore.Store
	js     jetstream.JetStream
	stream string // JetStream stream name, unique per test
	prefix string // subject prefix, unique per test
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pool := pgtest.NewPool(t)
	pgtest.Must(t, commands.Migrate(t.Context(), pool), "migrate commands")
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	nc, err := nats.Connect(natsURL)
	pgtest.Must(t, err, "connect to NATS at %s", natsURL)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	pgtest.Must(t, err, "jetstream")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	w := &world{pool: pool, store: store, js: js, stream: "TEST_EVENTS_" + id, prefix: "test" + id + ".events"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, w.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", w.stream, err)
		}
	})
	return w
}

func (w *world) forwarder(t *testing.T, url string) *forwarder.Forwarder {
	t.Helper()
	f, err := forwarder.New(w.store, w.pool, forwarder.Config{
		URL: url, Stream: w.stream, SubjectPrefix: w.prefix,
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		LockPoll: 50 * time.Millisecond, FlushInterval: 20 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
	pgtest.Must(t, err, "new forwarder")
	return f
}

// appended is what the test appended, to compare with what arrives.
type appended struct {
	id       uuid.UUID
	stream   string
	version  uint64
	typ      string
	data     string
	position events.Position
	md       events.Metadata
}

// appendEvents appends n slug events to one new stream (a realistic payload) and returns them.
func (w *world) appendEvents(t *testing.T, category string, n int) []appended {
	t.Helper()
	stream := category + "-" + uuid.NewString()
	var out []appended
	for i := range n {
		md := events.Metadata{CorrelationID: uuid.NewString(), CausationID: uuid.NewString(), Actor: "system:test", RequestID: "req-" + strconv.Itoa(i)}
		ev := events.SlugReserved{Slug: "site-" + strconv.Itoa(i), ProjectID: uuid.NewString(), At: time.Now().UTC().Truncate(time.Millisecond)}
		data, err := events.Encode(ev, uuid.New(), md)
		pgtest.Must(t, err, "encode")
		res, err := w.store.Append(t.Context(), stream, events.Any(), []events.EventData{data})
		pgtest.Must(t, err, "append")
		out = append(out, appended{id: data.ID, stream: stream, version: res.NextVersion, typ: data.Type, data: string(data.Data), position: res.Position, md: md})
	}
	return out
}

// messages waits until the test stream holds want messages (failing after 10 s), checks that no
// more arrive for a moment, and returns them in stream order.
func (w *world) messages(t *testing.T, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := t.Context()
	var s jetstream.Stream
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		s, err = w.js.Stream(ctx, w.stream)
		if err == nil {
			info, err := s.Info(ctx)
			pgtest.Must(t, err, "stream info")
			if info.State.Msgs >= uint64(want) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s did not reach %d messages within 10 s", w.stream, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let a duplicate, if any, arrive
	info, err := s.Info(ctx)
	pgtest.Must(t, err, "stream info")
	if info.State.Msgs != uint64(want) {
		t.Fatalf("stream holds %d messages, want exactly %d", info.State.Msgs, want)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		pgtest.Must(t, err, "get message %d", seq)
		out = append(out, m)
	}
	return out
}

func checkMessages(t *testing.T, w *world, got []*jetstream.RawStreamMsg, want []appended) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		a := want[i]
		if wantSubj := w.prefix + "." + events.Category(a.stream) + "." + a.typ; m.Subject != wantSubj {
			t.Errorf("message %d: subject %q, want %q", i, m.Subject, wantSubj)
		}
		if !sameJSON(m.Data, []byte(a.data)) {
			t.Errorf("message %d: data %s, want %s", i, m.Data, a.data)
		}
		h := m.Header
		for name, want := range map[string]string{
			nats.MsgIdHdr:            a.id.String(),
			forwarder.HeaderStream:   a.stream,
			forwarder.HeaderVersion:  strconv.FormatUint(a.version, 10),
			forwarder.HeaderPosition: a.position.String(),
			forwarder.HeaderType:     a.typ,
		} {
			if got := h.Get(name); got != want {
				t.Errorf("message %d: header %s = %q, want %q", i, name, got, want)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, h.Get(forwarder.HeaderCreatedAt)); err != nil {
			t.Errorf("message %d: created-at header %q: %v", i, h.Get(forwarder.HeaderCreatedAt), err)
		}
		var md events.Metadata
		if err := json.Unmarshal([]byte(h.Get(forwarder.HeaderMetadata)), &md); err != nil || md != a.md {
			t.Errorf("message %d: metadata header %q (%v), want %+v", i, h.Get(forwarder.HeaderMetadata), err, a.md)
		}
	}
}

// sameJSON compares two JSON documents by value (the store keeps data as jsonb, which reorders keys).
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

func TestForwardsEveryEventOnceInOrderWithHeaders(t *testing.T) {
	w := newWorld(t)
	want := w.appendEvents(t, "slug", 3)
	want = append(want, w.appendEvents(t, "project", 2)...)
	f := w.forwarder(t, natsURL)
	pgtest.Background(t, f.Run)
	want = append(want, w.appendEvents(t, "slug", 2)...) // live events, after the catch-up
	checkMessages(t, w, w.messages(t, len(want)), want)

	last := want[len(want)-1].position
	waitCheckpoint(t, f, last)
}

func waitCheckpoint(t *testing.T, f *forwarder.Forwarder, want events.Position) {
	t.Helper()
	pgtest.Eventually(t, func() (bool, string) {
		got, err := f.Checkpoint(t.Context())
		pgtest.Must(t, err, "checkpoint")
		return got == want, fmt.Sprintf("checkpoint %s, want %s", got, want)
	})
}

func TestRestartResumesAfterTheCheckpoint(t *testing.T) {
	w := newWorld(t)
	first := w.appendEvents(t, "slug", 3)
	f := w.forwarder(t, natsURL)
	stop := pgtest.Background(t, f.Run)
	checkMessages(t, w, w.messages(t, 3), first)
	waitCheckpoint(t, f, first[2].position)
	stop()

	// Drop the stream and with it JetStream's duplicate tracking: a forwarder that started over
	// from the beginning would now publish the first events again.
	pgtest.Must(t, w.js.DeleteStream(t.Context(), w.stream), "delete stream")
	second := w.appendEvents(t, "project", 2)
	pgtest.Background(t, w.forwarder(t, natsURL).Run)
	checkMessages(t, w, w.messages(t, 2), second)
}

func TestNATSDownDelaysEventsWithoutLosingThem(t *testing.T) {
	w := newWorld(t)
	// A port with nothing listening: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	pgtest.Must(t, err, "listen")
	badURL := "nats://" + l.Addr().String()
	_ = l.Close()

	want := w.appendEvents(t, "slug", 3)
	bad := w.forwarder(t, badURL)
	stop := pgtest.Background(t, bad.Run)
	time.Sleep(500 * time.Millisecond) // several connection attempts fail meanwhile
	want = append(want, w.appendEvents(t, "slug", 1)...)
	time.Sleep(200 * time.Millisecond)
	cp, err := bad.Checkpoint(t.Context())
	pgtest.Must(t, err, "checkpoint")
	if !cp.IsZero() {
		t.Fatalf("checkpoint moved to %s while NATS was unreachable", cp)
	}
	// The failed connects are counted: with no event in hand the lag gauge cannot show it.
	badReg := prometheus.NewRegistry()
	badReg.MustRegister(bad.Collectors()...)
	if n := sample(t, badReg, "litehost_forwarder_failures_total"); n < 2 {
		t.Errorf("failures while NATS is unreachable = %v, want several connect failures", n)
	}
	stop()

	good := w.forwarder(t, natsURL)
	reg := prometheus.NewRegistry()
	reg.MustRegister(good.Collectors()...)
	pgtest.Background(t, good.Run)
	checkMessages(t, w, w.messages(t, len(want)), want)
	waitCheckpoint(t, good, want[len(want)-1].position)
	if n := sample(t, reg, "litehost_forwarder_events_total"); n != float64(len(want)) {
		t.Errorf("events counted = %v, want %d published", n, len(want))
	}
	if lag := sample(t, reg, "litehost_forwarder_lag_seconds"); lag != 0 {
		t.Errorf("lag = %v once caught up, want 0", lag)
	}
}

// sample sums every sample of the counter or gauge name in reg.
func sample(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	pgtest.Must(t, err, "gather")
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func TestOneForwarderAtATime(t *testing.T) {
	w := newWorld(t)
	want := w.appendEvents(t, "slug", 4)
	a, b := w.forwarder(t, natsURL), w.forwarder(t, natsURL)
	pgtest.Background(t, a.Run)
	pgtest.Background(t, b.Run)
	want = append(want, w.appendEvents(t, "slug", 4)...)
	checkMessages(t, w, w.messages(t, len(want)), want)
	// The lock is held by exactly one of the two sessions.
	var holders int
	err := w.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&holders)
	pgtest.Must(t, err, "count locks")
	if holders != 1 {
		t.Errorf("%d advisory locks held, want 1", holders)
	}
}

func TestSubject(t *testing.T) {
	tests := []struct{ stream, typ, want string }{
		{"project-1f0c", "project.created.v1", "litehost.events.project.project.created.v1"},
		{"hostname-example.com", "domain.hostname_reserved.v1", "litehost.events.hostname.domain.hostname_reserved.v1"},
		{"weird", "a b.*.>..v1", "litehost.events.weird.a_b._._._.v1"},
	}
	for _, tt := range tests {
		if got := forwarder.Subject("litehost.events", tt.stream, tt.typ); got != tt.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tt.stream, tt.typ, got, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []forwarder.Config{{}, {URL: natsURL, SubjectPrefix: "a.*"}, {URL: natsURL, SubjectPrefix: "a."}} {
		if _, err := forwarder.New(nil, nil, cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestForwardsOnlyThePublicContract appends a private OTP event between two project events whose
// data and metadata hold secrets and request origins: only the public form of the project events
// reaches NATS, and the checkpoint still moves past the private one.
func TestForwardsOnlyThePublicContract(t *testing.T) {
	w := newWorld(t)
	md := events.Metadata{CorrelationID: "corr", CausationID: "cause", Actor: "anonymous", RequestID: "req",
		ClientIP: "198.51.100.77", UserAgent: "SecretAgent/1.0 (device 4242)"}
	now := time.Now().UTC()
	project := uuid.NewString()
	appendOne := func(stream string, ev events.Event) events.AppendResult {
		data, err := events.Encode(ev, uuid.New(), md)
		pgtest.Must(t, err, "encode")
		res, err := w.store.Append(t.Context(), stream, events.Any(), []events.EventData{data})
		pgtest.Must(t, err, "append")
		return res
	}
	appendOne("project-"+project, events.ProjectCreated{ProjectID: project, Temporary: true, ClaimTokenHash: "claim-hash-value",
		Settings:   events.ProjectSettings{Slug: "s", Access: "password", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"},
		Deployment: events.Deployment{DeploymentID: uuid.NewString(), Version: 1, ManifestHash: "manifest-hash-value"}, At: now})
	appendOne("otp-0123abcd", events.OTPRequested{Channel: "email", Address: "person@example.com", Nonce: "nonce-value", CodeHash: "code-hash-value", RequestedAt: now})
	last := appendOne("project-"+project, events.ProjectArchived{ProjectID: project, At: now})

	f := w.forwarder(t, natsURL)
	pgtest.Background(t, f.Run)
	msgs := w.messages(t, 2)
	for i, m := range msgs {
		all := string(m.Data)
		for k, v := range m.Header {
			all += k + ":" + fmt.Sprint(v)
		}
		for _, secret := range []string{"claim-hash-value", "argon2id", "manifest-hash-value", "person@example.com", "nonce-value",
			"code-hash-value", "Hash", "198.51.100", "SecretAgent", "clientIp", "userAgent"} {
			if strings.Contains(all, secret) {
				t.Errorf("message %d (%s) holds %q:\n%s", i, m.Subject, secret, all)
			}
		}
	}
	if typ := msgs[0].Header.Get(forwarder.HeaderType); typ != events.TypeProjectCreated || !strings.Contains(string(msgs[0].Data), `"passwordProtected":true`) {
		t.Errorf("first message %s: %s", typ, msgs[0].Data)
	}
	if typ := msgs[1].Header.Get(forwarder.HeaderType); typ != events.TypeProjectArchived {
		t.Errorf("second message %s, want project.archived.v1 (the OTP event is private)", typ)
	}
	waitCheckpoint(t, f, last.Position)
}
