package esdbemu_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/litehost/litehost/events/esdbemu"
)

// The tests drive the emulator through the official v4 client over real gRPC and follow the
// conformance checklist of esdb-protocol-notes.md §7; each test names its checklist item.

const waitFor = 5 * time.Second

func start(t *testing.T, opts ...esdbemu.Option) (*esdbemu.Server, *esdb.Client) {
	t.Helper()
	srv, err := esdbemu.Start(t.Context(), opts...)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg, err := esdb.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatalf("parse %s: %v", srv.URL(), err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func uniq(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}

func evData(typ string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(`{"k":"v"}`), Metadata: []byte(`{"m":1}`)}
}

func evs(n int) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = evData("test.happened.v1")
	}
	return out
}

func mustAppend(t *testing.T, c *esdb.Client, stream string, exp esdb.ExpectedRevision, data ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	res, err := c.AppendToStream(t.Context(), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, data...)
	if err != nil {
		t.Fatalf("append %d to %s: %v", len(data), stream, err)
	}
	return res
}

func appendErr(t *testing.T, c *esdb.Client, stream string, exp esdb.ExpectedRevision, data ...esdb.EventData) error {
	t.Helper()
	_, err := c.AppendToStream(t.Context(), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, data...)
	return err
}

func code(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

func drain(rs *esdb.ReadStream) ([]*esdb.ResolvedEvent, error) {
	defer rs.Close()
	var out []*esdb.ResolvedEvent
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

func readStream(t *testing.T, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(t.Context(), stream, opts, count)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return drain(rs)
}

func readAll(t *testing.T, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadAll(t.Context(), opts, count)
	if err != nil {
		t.Fatalf("read $all: %v", err)
	}
	out, err := drain(rs)
	if err != nil {
		t.Fatalf("read $all: %v", err)
	}
	return out
}

func revisions(evs []*esdb.ResolvedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.OriginalEvent().EventNumber
	}
	return out
}

// subMsgs forwards a subscription's messages to a channel until it drops.
func subMsgs(sub *esdb.Subscription) <-chan *esdb.SubscriptionEvent {
	ch := make(chan *esdb.SubscriptionEvent, 1024)
	go func() {
		defer close(ch)
		for {
			m := sub.Recv()
			ch <- m
			if m.SubscriptionDropped != nil {
				return
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan *esdb.SubscriptionEvent) *esdb.SubscriptionEvent {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("subscription channel closed")
		}
		return m
	case <-time.After(waitFor):
		t.Fatal("no subscription message in time")
	}
	return nil
}

// nextEvent skips checkpoints and caught_up messages and returns the next event.
func nextEvent(t *testing.T, ch <-chan *esdb.SubscriptionEvent) *esdb.RecordedEvent {
	t.Helper()
	for {
		m := next(t, ch)
		switch {
		case m.EventAppeared != nil:
			return m.EventAppeared.OriginalEvent()
		case m.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped: %v", m.SubscriptionDropped.Error)
		}
	}
}

func expectQuiet(t *testing.T, ch <-chan *esdb.SubscriptionEvent) {
	t.Helper()
	timeout := time.After(200 * time.Millisecond)
	for {
		select {
		case m := <-ch:
			if m.EventAppeared != nil {
				e := m.EventAppeared.OriginalEvent()
				t.Fatalf("unexpected event %s@%d (%s)", e.StreamID, e.EventNumber, e.EventType)
			}
		case <-timeout:
			return
		}
	}
}
