package kurrentcheck_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// startEmulator builds the emulator's main and runs it as a child process; it stops when the
// test closes its stdin.
func startEmulator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "esdbemu")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/litehost/litehost/events/esdbemu/cmd/esdbemu")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build emulator: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("emulator exited: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("emulator did not stop when its stdin closed")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read emulator URL: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(line)
}

func client(t *testing.T) *kurrentdb.Client {
	t.Helper()
	url := startEmulator(t)
	cfg, err := kurrentdb.ParseConnectionString(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	cfg.Logger = kurrentdb.NoopLogging()
	c, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func event(typ string) kurrentdb.EventData {
	return kurrentdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kurrentdb.ContentTypeJson,
		Data: []byte(`{"k":1}`), Metadata: []byte(`{"m":"x"}`)}
}

func code(err error) kurrentdb.ErrorCode {
	var e *kurrentdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

func read(t *testing.T, rs *kurrentdb.ReadStream) ([]*kurrentdb.ResolvedEvent, error) {
	t.Helper()
	defer rs.Close()
	var out []*kurrentdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// One emulator process serves every case: building and starting it is the slow part.
func TestKurrentClientAgainstEmulator(t *testing.T) {
	c := client(t)
	ctx := t.Context()
	stream := "kc-" + uuid.NewString()
	a, b := event("kc.a.v1"), event("kc.b.v1")

	t.Run("append no_stream then read back", func(t *testing.T) {
		res, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, a, b)
		if err != nil {
			t.Fatal(err)
		}
		if res.NextExpectedVersion != 1 || res.CommitPosition == 0 || res.CommitPosition != res.PreparePosition {
			t.Errorf("result = %+v", res)
		}
		rs, err := c.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}}, 10)
		if err != nil {
			t.Fatal(err)
		}
		got, err := read(t, rs)
		if err != nil || len(got) != 2 {
			t.Fatalf("read = %d events, %v", len(got), err)
		}
		e := got[1].Event
		if e.EventID != b.EventID || e.EventType != "kc.b.v1" || e.EventNumber != 1 || e.ContentType != "application/json" ||
			!bytes.Equal(e.Data, b.Data) || !bytes.Equal(e.UserMetadata, b.Metadata) || time.Since(e.CreatedDate) > time.Minute {
			t.Errorf("event = %+v", e)
		}
		if e.Position.Commit != res.CommitPosition {
			t.Errorf("last event at %d, append returned %d", e.Position.Commit, res.CommitPosition)
		}
	})

	// After the first call the client has read ServerFeatures; 0.0.0 would mean "pre-21.10 node".
	t.Run("server version", func(t *testing.T) {
		v, err := c.GetServerVersion()
		if err != nil || v.Major != 24 || v.Minor != 10 {
			t.Errorf("server version = %+v, %v; want 24.10.x", v, err)
		}
	})

	t.Run("idempotent resend and wrong expected version", func(t *testing.T) {
		res, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, a, b)
		if err != nil || res.NextExpectedVersion != 1 {
			t.Errorf("resend = %+v, %v; want idempotent success at 1", res, err)
		}
		_, err = c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Revision(0)}, event("kc.c.v1"))
		if code(err) != kurrentdb.ErrorCodeWrongExpectedVersion {
			t.Errorf("append at revision 0 = %v, want WEV", err)
		}
		_, err = c.AppendToStream(ctx, "kc-"+uuid.NewString(), kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.StreamExists{}}, event("kc.c.v1"))
		if code(err) != kurrentdb.ErrorCodeWrongExpectedVersion {
			t.Errorf("stream_exists on a missing stream = %v, want WEV", err)
		}
	})

	t.Run("missing stream", func(t *testing.T) {
		rs, err := c.ReadStream(ctx, "kc-"+uuid.NewString(), kurrentdb.ReadStreamOptions{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := read(t, rs); code(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Errorf("read = %v, want ResourceNotFound", err)
		}
	})

	t.Run("$all forwards inclusive, backwards exclusive", func(t *testing.T) {
		rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: kurrentdb.Start{}}, 100)
		if err != nil {
			t.Fatal(err)
		}
		all, err := read(t, rs)
		if err != nil || len(all) < 2 {
			t.Fatalf("read $all = %d events, %v", len(all), err)
		}
		p := all[1].Event.Position
		rs, _ = c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: p}, 1)
		fwd, err := read(t, rs)
		if err != nil || len(fwd) != 1 || fwd[0].Event.Position != p {
			t.Errorf("forwards from %v = %v, %v; want the event at it", p, fwd, err)
		}
		rs, _ = c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: p, Direction: kurrentdb.Backwards}, 1)
		back, err := read(t, rs)
		if err != nil || len(back) != 1 || back[0].Event.Position != all[0].Event.Position {
			t.Errorf("backwards from %v = %v, %v; want the event before it", p, back, err)
		}
	})

	t.Run("filtered $all subscription", func(t *testing.T) {
		sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{
			From:   kurrentdb.Start{},
			Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{stream}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		msgs := make(chan *kurrentdb.SubscriptionEvent, 100)
		go func() {
			defer close(msgs)
			for {
				m := sub.Recv()
				msgs <- m
				if m.SubscriptionDropped != nil {
					return
				}
			}
		}()
		next := func() *kurrentdb.SubscriptionEvent {
			select {
			case m := <-msgs:
				return m
			case <-time.After(5 * time.Second):
				t.Fatal("no subscription message in time")
			}
			return nil
		}
		var ids []uuid.UUID
		caughtUp := false
		for !caughtUp {
			m := next()
			switch {
			case m.EventAppeared != nil:
				ids = append(ids, m.EventAppeared.Event.EventID)
			case m.CaughtUp != nil:
				// KurrentDB reports caught_up only in the v25.1 form (with a timestamp), and
				// for $all with the position caught up to.
				if m.CaughtUp.Position == nil || m.CaughtUp.Position.Commit == 0 {
					t.Errorf("caught_up without a position: %+v", m.CaughtUp)
				}
				caughtUp = true
			case m.SubscriptionDropped != nil:
				t.Fatalf("dropped: %v", m.SubscriptionDropped.Error)
			}
		}
		if len(ids) != 2 || ids[0] != a.EventID || ids[1] != b.EventID {
			t.Fatalf("catch-up delivered %v, want [A B]", ids)
		}
		live := event("kc.live.v1")
		if _, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Revision(1)}, live); err != nil {
			t.Fatal(err)
		}
		for {
			m := next()
			if m.EventAppeared != nil {
				if got := m.EventAppeared.Event; got.EventID != live.EventID || got.EventNumber != 2 {
					t.Fatalf("live event %v@%d, want the new one at 2", got.EventID, got.EventNumber)
				}
				return
			}
		}
	})
}
