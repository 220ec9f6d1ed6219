package esdbstore_test

import (
	"testing"
	"time"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/esdbemu"
	"github.com/litehost/litehost/events/esdbstore"
)

func emu(t *testing.T) (*esdbemu.Server, *esdbstore.Store) {
	t.Helper()
	srv, err := esdbemu.Start(t.Context())
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, dialStore(t, srv.URL())
}

func receive(t *testing.T, sub events.Subscription) events.RecordedEvent {
	t.Helper()
	select {
	case e, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event in time")
	}
	return events.RecordedEvent{}
}

// After the server drops the subscription, the adapter resubscribes from the last delivered
// event: every event arrives exactly once, in order.
func TestSubscribeAllResubscribesAfterDrop(t *testing.T) {
	srv, s := emu(t)
	stream := uniq("drop")
	first := []events.EventData{ev("drop.a.v1"), ev("drop.b.v1")}
	if _, err := s.Append(t.Context(), stream, events.NoStream(), first); err != nil {
		t.Fatal(err)
	}
	sub, err := s.SubscribeAll(t.Context(), events.Start, events.Filter{StreamPrefixes: []string{stream}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, want := range first {
		if got := receive(t, sub); got.ID != want.ID {
			t.Fatalf("got %s, want %s", got.ID, want.ID)
		}
	}
	// The subscription is live and waiting once nothing more arrives for a moment.
	time.Sleep(100 * time.Millisecond)
	for round := range 3 {
		srv.DropSubscriptions()
		next := []events.EventData{ev("drop.c.v1"), ev("drop.d.v1")}
		if _, err := s.Append(t.Context(), stream, events.Any(), next); err != nil {
			t.Fatal(err)
		}
		for _, want := range next {
			if got := receive(t, sub); got.ID != want.ID {
				t.Fatalf("round %d: got %s (%s), want %s", round, got.ID, got.Type, want.ID)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case e := <-sub.Events():
		t.Fatalf("extra event %s@%d after resubscribing", e.Stream, e.Version)
	case <-time.After(300 * time.Millisecond):
	}
}

// Head is the newest event that is not a system event, or Start on an empty log.
func TestHead(t *testing.T) {
	_, s := emu(t)
	head, err := s.Head(t.Context())
	if err != nil || head != events.Start {
		t.Fatalf("head of an empty log = %v, %v", head, err)
	}
	stream := uniq("head")
	res, err := s.Append(t.Context(), stream, events.NoStream(), []events.EventData{ev("head.a.v1")})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 { // more than one backwards page of system events
		if _, err := s.Append(t.Context(), stream, events.Any(), []events.EventData{ev("$system")}); err != nil {
			t.Fatal(err)
		}
	}
	head, err = s.Head(t.Context())
	if err != nil || head != res.Position {
		t.Fatalf("head = %v, %v; want %v", head, err, res.Position)
	}
}
