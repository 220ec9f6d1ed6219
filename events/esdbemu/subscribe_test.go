package esdbemu_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func subscribeStream(t *testing.T, c *esdb.Client, s string, from esdb.StreamPosition) <-chan *esdb.SubscriptionEvent {
	t.Helper()
	sub, err := c.SubscribeToStream(t.Context(), s, esdb.SubscribeToStreamOptions{From: from})
	if err != nil {
		t.Fatalf("subscribe to %s: %v", s, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return subMsgs(sub)
}

func subscribeAll(t *testing.T, c *esdb.Client, opts esdb.SubscribeToAllOptions) <-chan *esdb.SubscriptionEvent {
	t.Helper()
	sub, err := c.SubscribeToAll(t.Context(), opts)
	if err != nil {
		t.Fatalf("subscribe to $all: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return subMsgs(sub)
}

// Item 34: confirmation (checked by SubscribeToStream), exclusive start, caught_up, live.
func TestSubscribeStreamFromRevision(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	mustAppend(t, c, s, esdb.NoStream{}, evs(5)...)
	ch := subscribeStream(t, c, s, esdb.Revision(2))
	for _, want := range []uint64{3, 4} {
		m := next(t, ch)
		if m.EventAppeared == nil || m.EventAppeared.OriginalEvent().EventNumber != want {
			t.Fatalf("got %+v, want event %d", m, want)
		}
	}
	if m := next(t, ch); m.CaughtUp == nil {
		t.Fatalf("got %+v, want caught_up", m)
	}
	mustAppend(t, c, s, esdb.Revision(4), evs(2)...)
	for _, want := range []uint64{5, 6} {
		if got := nextEvent(t, ch).EventNumber; got != want {
			t.Fatalf("live event %d, want %d", got, want)
		}
	}
}

// Item 35: a missing stream confirms, catches up, then delivers its first append.
func TestSubscribeStreamMissing(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	ch := subscribeStream(t, c, s, esdb.Start{})
	if m := next(t, ch); m.CaughtUp == nil {
		t.Fatalf("got %+v, want caught_up", m)
	}
	mustAppend(t, c, s, esdb.NoStream{}, evData("x"))
	if got := nextEvent(t, ch).EventNumber; got != 0 {
		t.Fatalf("first event %d, want 0", got)
	}
}

// Item 36: a start beyond the end silently skips the live events up to it.
func TestSubscribeStreamBeyondEnd(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	mustAppend(t, c, s, esdb.NoStream{}, evs(2)...)
	ch := subscribeStream(t, c, s, esdb.Revision(5))
	mustAppend(t, c, s, esdb.Any{}, evs(6)...)
	if got := nextEvent(t, ch).EventNumber; got != 6 {
		t.Fatalf("first event %d, want 6", got)
	}
	if got := nextEvent(t, ch).EventNumber; got != 7 {
		t.Fatalf("second event %d, want 7", got)
	}
}

// Items 37 and 38: $all subscriptions start after their position; from end sees only new events.
func TestSubscribeAllExclusive(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	mustAppend(t, c, s, esdb.NoStream{}, evs(3)...)
	all := readAll(t, c, esdb.ReadAllOptions{}, 10)
	ch := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: all[1].Event.Position})
	if got := nextEvent(t, ch); got.EventID != all[2].Event.EventID {
		t.Fatalf("item 37: first event %s@%d, want the one after E", got.StreamID, got.EventNumber)
	}

	end := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.End{}})
	if m := next(t, end); m.CaughtUp == nil {
		t.Fatalf("item 38: got %+v, want caught_up first", m)
	}
	fresh := evData("fresh")
	mustAppend(t, c, s, esdb.Any{}, fresh)
	if got := nextEvent(t, end); got.EventID != fresh.EventID {
		t.Fatalf("item 38: first event %s@%d, want the new one", got.StreamID, got.EventNumber)
	}
	if got := nextEvent(t, ch); got.EventID != fresh.EventID {
		t.Fatalf("item 37: live event %s@%d, want the new one", got.StreamID, got.EventNumber)
	}
}

// Item 39: checkpoints during catch-up of a filtered subscription, and one before caught_up.
func TestSubscribeAllCheckpointsCatchUp(t *testing.T) {
	_, c := start(t)
	other := uniq("other")
	mustAppend(t, c, other, esdb.NoStream{}, evs(40)...)
	want := uniq("want")
	mustAppend(t, c, want, esdb.NoStream{}, evData("x"))
	mustAppend(t, c, other, esdb.Any{}, evs(30)...)

	ch := subscribeAll(t, c, esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{want}},
	})
	var checkpoints []uint64
	var lastEvent uint64
	for {
		m := next(t, ch)
		if m.EventAppeared != nil {
			lastEvent = m.EventAppeared.OriginalEvent().Position.Commit
			if s := m.EventAppeared.OriginalEvent().StreamID; s != want {
				t.Errorf("delivered an event of %s", s)
			}
		}
		if m.CheckPointReached != nil {
			if m.CheckPointReached.Commit != m.CheckPointReached.Prepare {
				t.Errorf("checkpoint %+v: commit != prepare", m.CheckPointReached)
			}
			checkpoints = append(checkpoints, m.CheckPointReached.Commit)
		}
		if m.CaughtUp != nil {
			break
		}
	}
	if len(checkpoints) < 2 {
		t.Fatalf("checkpoints = %v, want at least one during catch-up and one at its end", checkpoints)
	}
	for i := 1; i < len(checkpoints); i++ {
		if checkpoints[i] <= checkpoints[i-1] {
			t.Errorf("checkpoints not strictly increasing: %v", checkpoints)
		}
	}
	if lastEvent == 0 || checkpoints[len(checkpoints)-1] < lastEvent {
		t.Errorf("final checkpoint %d is before the last delivered event %d", checkpoints[len(checkpoints)-1], lastEvent)
	}
	tail := readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if checkpoints[len(checkpoints)-1] != tail[0].Event.Position.Commit {
		t.Errorf("end-of-catch-up checkpoint %d, want the last scanned position %d", checkpoints[len(checkpoints)-1], tail[0].Event.Position.Commit)
	}
}

// Item 40: a live filtered subscription checkpoints at every 32nd event, matching or not.
func TestSubscribeAllCheckpointsLive(t *testing.T) {
	_, c := start(t)
	ch := subscribeAll(t, c, esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"nothing-matches"}},
	})
	if m := next(t, ch); m.CaughtUp == nil {
		t.Fatalf("got %+v, want caught_up on an empty log", m)
	}
	other := uniq("other")
	for range 32 {
		mustAppend(t, c, other, esdb.Any{}, evData("x"))
	}
	m := next(t, ch)
	if m.CheckPointReached == nil {
		t.Fatalf("got %+v, want a checkpoint", m)
	}
	tail := readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if m.CheckPointReached.Commit != tail[0].Event.Position.Commit {
		t.Errorf("checkpoint at %d, want the 32nd event's position %d", m.CheckPointReached.Commit, tail[0].Event.Position.Commit)
	}
}

// Item 41: the exclude-system filter drops $-types; an unfiltered subscription sees them.
func TestSubscribeAllSystemEvents(t *testing.T) {
	_, c := start(t)
	filtered := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: esdb.ExcludeSystemEventsFilter()})
	raw := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}})
	s := uniq("sys")
	mustAppend(t, c, s, esdb.NoStream{}, evData("x"))
	if _, err := c.DeleteStream(t.Context(), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TombstoneStream(t.Context(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	last := evData("last")
	mustAppend(t, c, uniq("sys"), esdb.NoStream{}, last)

	var rawTypes []string
	for {
		e := nextEvent(t, raw)
		rawTypes = append(rawTypes, e.EventType)
		if e.EventID == last.EventID {
			break
		}
	}
	want := []string{"x", "$metadata", "$streamDeleted", "last"}
	if len(rawTypes) != len(want) {
		t.Fatalf("unfiltered types = %v, want %v", rawTypes, want)
	}
	for i := range want {
		if rawTypes[i] != want[i] {
			t.Errorf("unfiltered types = %v, want %v", rawTypes, want)
		}
	}
	for {
		e := nextEvent(t, filtered)
		if e.EventType[0] == '$' {
			t.Errorf("filtered subscription delivered %s", e.EventType)
		}
		if e.EventID == last.EventID {
			break
		}
	}
}

// Item 42: a tombstone reaches a live stream subscriber as $streamDeleted, then a drop.
func TestSubscribeStreamTombstoned(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	mustAppend(t, c, s, esdb.NoStream{}, evData("x"))
	ch := subscribeStream(t, c, s, esdb.End{})
	if m := next(t, ch); m.CaughtUp == nil {
		t.Fatalf("got %+v, want caught_up", m)
	}
	if _, err := c.TombstoneStream(t.Context(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, ch); e.EventType != "$streamDeleted" {
		t.Fatalf("got %s, want $streamDeleted", e.EventType)
	}
	m := next(t, ch)
	if m.SubscriptionDropped == nil || status.Code(m.SubscriptionDropped.Error) != codes.FailedPrecondition {
		t.Fatalf("got %+v, want a FailedPrecondition drop", m)
	}
}

// Item 43: a soft delete leaves a stream subscription open; the revival arrives.
func TestSubscribeStreamSoftDeleted(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	mustAppend(t, c, s, esdb.NoStream{}, evs(2)...)
	ch := subscribeStream(t, c, s, esdb.End{})
	if _, err := c.DeleteStream(t.Context(), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, c, s, esdb.Any{}, evData("again"))
	if got := nextEvent(t, ch); got.EventNumber != 2 || got.EventType != "again" {
		t.Fatalf("got %s@%d, want again@2", got.EventType, got.EventNumber)
	}
}

// Item 44: a closed subscription drops with Canceled and the server releases it.
func TestSubscribeCloseReleases(t *testing.T) {
	_, c := start(t)
	s := uniq("sub")
	mustAppend(t, c, s, esdb.NoStream{}, evData("x"))
	cycle := func() {
		sub, err := c.SubscribeToAll(t.Context(), esdb.SubscribeToAllOptions{From: esdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		ch := subMsgs(sub)
		nextEvent(t, ch)
		_ = sub.Close()
		for m := range ch {
			if m.SubscriptionDropped != nil {
				return
			}
		}
	}
	cycle()
	before := runtime.NumGoroutine()
	for range 50 {
		cycle()
	}
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after 50 subscribe/close cycles", before, runtime.NumGoroutine())
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx, cancel := context.WithCancel(t.Context())
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	ch := subMsgs(sub)
	nextEvent(t, ch)
	cancel()
	for m := range ch {
		if m.SubscriptionDropped != nil {
			if status.Code(m.SubscriptionDropped.Error) != codes.Canceled {
				t.Errorf("drop after cancel = %v, want Canceled", m.SubscriptionDropped.Error)
			}
			return
		}
	}
}

// Item 45: a burst larger than the live buffer arrives once each, in order.
func TestSubscribeBurst(t *testing.T) {
	_, c := start(t)
	s := uniq("burst")
	ch := subscribeStream(t, c, s, esdb.Start{})
	if m := next(t, ch); m.CaughtUp == nil {
		t.Fatalf("got %+v, want caught_up", m)
	}
	for range 10 {
		mustAppend(t, c, s, esdb.Any{}, evs(10)...)
	}
	for want := range uint64(100) {
		if got := nextEvent(t, ch).EventNumber; got != want {
			t.Fatalf("event %d, want %d", got, want)
		}
	}
	expectQuiet(t, ch)
}
