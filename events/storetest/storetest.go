// Package storetest is the conformance suite of the event store port (DESIGN §3). Every backend
// (pgstore, esdbstore on the emulator, esdbstore on a real EventStoreDB) runs it unchanged.
//
// The suite only uses events.Store. A real EventStoreDB's $all is shared and never empty, so every
// test writes to streams under its own random prefix, reads $all from a marker event it appended
// itself, and keeps only its own streams (Filter.StreamPrefixes).
//
// Data and metadata are compared as JSON values, not bytes: pgstore keeps them as jsonb, which
// normalises whitespace and key order.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
)

// wait bounds every wait for an event that must arrive.
const wait = 15 * time.Second

// quiet is how long a test watches for events that must not arrive.
const quiet = 300 * time.Millisecond

// Run runs the whole suite. newStore returns a store for one subtest; it may be shared or fresh.
func Run(t *testing.T, newStore func(t *testing.T) events.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s events.Store)
	}{
		{"AppendReadRoundTrip", testRoundTrip},
		{"ExpectedVersion", testExpectedVersion},
		{"IdempotentResend", testIdempotentResend},
		{"ResendWithDifferentIDs", testResendDiffers},
		{"IDsArePerStream", testIDsPerStream},
		{"ReadStreamRange", testReadStreamRange},
		{"ReadStreamNotFound", testReadStreamNotFound},
		{"ReadAllOrderAndPositions", testReadAllPositions},
		{"ReadAllExclusive", testReadAllExclusive},
		{"SubscribeCatchUpThenLive", testSubscribeCatchUpLive},
		{"SubscribeFilterType", testSubscribeFilterType},
		{"SubscribeFilterStream", testSubscribeFilterStream},
		{"SubscribeSkipsSystemEvents", testSubscribeSkipsSystem},
		{"SubscribeEnds", testSubscribeEnds},
		{"ConcurrentNoStream", testConcurrentNoStream},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// scope is a random stream-name prefix owned by one test.
func scope() string {
	return "st" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
}

func newEvent(typ string, n int) events.EventData {
	return events.EventData{
		ID:       uuid.New(),
		Type:     typ,
		Data:     fmt.Appendf(nil, `{"n":%d,"text":"event %d"}`, n, n),
		Metadata: fmt.Appendf(nil, `{"correlationId":"c-%d","actor":"system:storetest"}`, n),
	}
}

func newEvents(typ string, count int) []events.EventData {
	evs := make([]events.EventData, count)
	for i := range evs {
		evs[i] = newEvent(typ, i)
	}
	return evs
}

func mustAppend(t *testing.T, s events.Store, stream string, exp events.Expected, evs []events.EventData) events.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, exp, evs)
	if err != nil {
		t.Fatalf("append %d events to %s (%s): %v", len(evs), stream, exp, err)
	}
	return res
}

// marker appends one event to the test's scope and returns its position: the test reads $all
// and subscribes from there, so it never walks a shared log from the start.
func marker(t *testing.T, s events.Store, sc string) events.Position {
	t.Helper()
	return mustAppend(t, s, sc+"marker-0", events.NoStream(), []events.EventData{newEvent("storetest.marker.v1", 0)}).Position
}

func readStream(t *testing.T, s events.Store, stream string) []events.RecordedEvent {
	t.Helper()
	recs, err := s.ReadStream(t.Context(), stream, 0, 10000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return recs
}

func jsonEqual(a, b []byte) bool {
	if len(bytes.TrimSpace(a)) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return len(bytes.TrimSpace(a)) == len(bytes.TrimSpace(b))
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// checkRecorded compares what was appended with what was read back.
func checkRecorded(t *testing.T, stream string, firstVersion uint64, sent []events.EventData, got []events.RecordedEvent) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("read %d events of %s, want %d", len(got), stream, len(sent))
	}
	for i, r := range got {
		e := sent[i]
		if r.ID != e.ID || r.Type != e.Type || r.Stream != stream || r.Version != firstVersion+uint64(i) {
			t.Errorf("event %d = {id %s type %s stream %s version %d}, want {id %s type %s stream %s version %d}",
				i, r.ID, r.Type, r.Stream, r.Version, e.ID, e.Type, stream, firstVersion+uint64(i))
		}
		if !jsonEqual(r.Data, e.Data) {
			t.Errorf("event %d data = %s, want %s", i, r.Data, e.Data)
		}
		if !jsonEqual(r.Metadata, e.Metadata) {
			t.Errorf("event %d metadata = %s, want %s", i, r.Metadata, e.Metadata)
		}
	}
}

func checkIncreasing(t *testing.T, recs []events.RecordedEvent) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if recs[i].Position.Compare(recs[i-1].Position) <= 0 {
			t.Fatalf("position of event %d (%s) is not after event %d (%s)", i, recs[i].Position, i-1, recs[i-1].Position)
		}
	}
}

// readScoped reads $all after from until it has found want events of the scope's streams, then
// reads on to the end of the log to catch any extra (duplicated) one.
func readScoped(t *testing.T, s events.Store, from events.Position, sc string, want int) []events.RecordedEvent {
	t.Helper()
	f := events.Filter{StreamPrefixes: []string{sc}}
	var got []events.RecordedEvent
	deadline := time.Now().Add(wait)
	pos := from
	for {
		page, err := s.ReadAll(t.Context(), pos, 500)
		if err != nil {
			t.Fatalf("read all from %s: %v", pos, err)
		}
		for _, r := range page {
			if r.Position.Compare(pos) <= 0 {
				t.Fatalf("read all from %s returned an event at %s", pos, r.Position)
			}
			pos = r.Position
			if f.Match(r.Stream, r.Type) {
				got = append(got, r)
			}
		}
		if len(page) > 0 {
			continue
		}
		if len(got) >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("read all: found %d of %d events after %s", len(got), want, wait)
		}
		// A store may show an event in $all a moment after its append returned (pgstore waits
		// for older transactions to finish).
		time.Sleep(10 * time.Millisecond)
	}
}

func wantWrongVersion(t *testing.T, err error, stream string, actual int64) {
	t.Helper()
	if !errors.Is(err, events.ErrWrongExpectedVersion) {
		t.Fatalf("append to %s: err = %v, want wrong expected version", stream, err)
	}
	var wev *events.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("append to %s: err %T is not a *WrongExpectedVersionError", stream, err)
	}
	if wev.Actual != actual {
		t.Errorf("append to %s: actual version = %d, want %d", stream, wev.Actual, actual)
	}
}

func testRoundTrip(t *testing.T, s events.Store) {
	stream := scope() + "-1"
	sent := newEvents("storetest.happened.v1", 3)
	sent[1].Type = "storetest.other.v1"
	sent[2].Metadata = nil
	before := time.Now()
	res := mustAppend(t, s, stream, events.NoStream(), sent)
	if res.NextVersion != 2 {
		t.Errorf("NextVersion = %d, want 2", res.NextVersion)
	}
	got := readStream(t, s, stream)
	checkRecorded(t, stream, 0, sent, got)
	checkIncreasing(t, got)
	if got[2].Position != res.Position {
		t.Errorf("last event position = %s, AppendResult.Position = %s", got[2].Position, res.Position)
	}
	for i, r := range got {
		if r.CreatedAt.Before(before.Add(-time.Minute)) || r.CreatedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("event %d CreatedAt = %s, want about %s", i, r.CreatedAt, before)
		}
	}

	more := newEvents("storetest.happened.v1", 2)
	res = mustAppend(t, s, stream, events.Exact(2), more)
	if res.NextVersion != 4 {
		t.Errorf("second NextVersion = %d, want 4", res.NextVersion)
	}
	got = readStream(t, s, stream)
	checkRecorded(t, stream, 0, append(sent, more...), got)
	checkIncreasing(t, got)
}

func testExpectedVersion(t *testing.T, s events.Store) {
	sc := scope()
	empty := func(t *testing.T) string { return sc + "-" + uuid.NewString() }
	twoEvents := func(t *testing.T) string {
		st := sc + "-" + uuid.NewString()
		mustAppend(t, s, st, events.NoStream(), newEvents("storetest.happened.v1", 2))
		return st
	}
	tests := []struct {
		name     string
		given    func(t *testing.T) string
		expected events.Expected
		wantNext uint64 // after appending one event
		wantWEV  bool
		actual   int64
	}{
		{"no stream on empty", empty, events.NoStream(), 0, false, 0},
		{"any on empty", empty, events.Any(), 0, false, 0},
		{"stream exists on empty", empty, events.StreamExists(), 0, true, -1},
		{"exact 0 on empty", empty, events.Exact(0), 0, true, -1},
		{"no stream on existing", twoEvents, events.NoStream(), 0, true, 1},
		{"any on existing", twoEvents, events.Any(), 2, false, 0},
		{"stream exists on existing", twoEvents, events.StreamExists(), 2, false, 0},
		{"exact current", twoEvents, events.Exact(1), 2, false, 0},
		{"exact behind", twoEvents, events.Exact(0), 0, true, 1},
		{"exact ahead", twoEvents, events.Exact(5), 0, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := tt.given(t)
			var before int
			if recs, err := s.ReadStream(t.Context(), stream, 0, 100); err == nil {
				before = len(recs)
			}
			res, err := s.Append(t.Context(), stream, tt.expected, []events.EventData{newEvent("storetest.happened.v1", 9)})
			if tt.wantWEV {
				wantWrongVersion(t, err, stream, tt.actual)
				var wev *events.WrongExpectedVersionError
				if errors.As(err, &wev) && wev.Stream != stream {
					t.Errorf("error stream = %q, want %q", wev.Stream, stream)
				}
				recs, rerr := s.ReadStream(t.Context(), stream, 0, 100)
				if rerr != nil && !errors.Is(rerr, events.ErrStreamNotFound) {
					t.Fatalf("read %s: %v", stream, rerr)
				}
				if len(recs) != before {
					t.Errorf("a failed append changed the stream: %d events, want %d", len(recs), before)
				}
				return
			}
			if err != nil {
				t.Fatalf("append with %s: %v", tt.expected, err)
			}
			if res.NextVersion != tt.wantNext {
				t.Errorf("NextVersion = %d, want %d", res.NextVersion, tt.wantNext)
			}
			if n := len(readStream(t, s, stream)); n != before+1 {
				t.Errorf("stream has %d events, want %d", n, before+1)
			}
		})
	}
}

func testIdempotentResend(t *testing.T, s events.Store) {
	sc := scope()
	tests := []struct {
		name     string
		prefix   int // events already in the stream before the batch
		expected func(prefix int) events.Expected
	}{
		{"no stream", 0, func(int) events.Expected { return events.NoStream() }},
		{"any", 0, func(int) events.Expected { return events.Any() }},
		{"any after others", 1, func(int) events.Expected { return events.Any() }},
		{"stream exists", 1, func(int) events.Expected { return events.StreamExists() }},
		{"exact", 2, func(p int) events.Expected { return events.Exact(uint64(p - 1)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := sc + "-" + uuid.NewString()
			if tt.prefix > 0 {
				mustAppend(t, s, stream, events.NoStream(), newEvents("storetest.before.v1", tt.prefix))
			}
			batch := newEvents("storetest.happened.v1", 2)
			first := mustAppend(t, s, stream, tt.expected(tt.prefix), batch)
			again, err := s.Append(t.Context(), stream, tt.expected(tt.prefix), batch)
			if err != nil {
				t.Fatalf("resend: %v", err)
			}
			if again != first {
				t.Errorf("resend result = %+v, want the original %+v", again, first)
			}
			got := readStream(t, s, stream)
			if len(got) != tt.prefix+2 {
				t.Fatalf("stream has %d events after the resend, want %d", len(got), tt.prefix+2)
			}
			checkRecorded(t, stream, uint64(tt.prefix), batch, got[tt.prefix:])
		})
	}

	t.Run("after later events", func(t *testing.T) {
		stream := sc + "-" + uuid.NewString()
		batch := newEvents("storetest.happened.v1", 2)
		first := mustAppend(t, s, stream, events.NoStream(), batch)
		mustAppend(t, s, stream, events.Exact(1), newEvents("storetest.after.v1", 1))
		for _, exp := range []events.Expected{events.Any(), events.NoStream()} {
			again, err := s.Append(t.Context(), stream, exp, batch)
			if err != nil {
				t.Fatalf("resend with %s: %v", exp, err)
			}
			if again != first {
				t.Errorf("resend with %s = %+v, want the original %+v", exp, again, first)
			}
		}
		if n := len(readStream(t, s, stream)); n != 3 {
			t.Errorf("stream has %d events, want 3", n)
		}
	})
}

func testResendDiffers(t *testing.T, s events.Store) {
	stream := scope() + "-1"
	batch := newEvents("storetest.happened.v1", 2)
	mustAppend(t, s, stream, events.NoStream(), batch)
	tests := []struct {
		name     string
		batch    []events.EventData
		expected events.Expected
	}{
		{"second id differs", []events.EventData{batch[0], newEvent("storetest.happened.v1", 7)}, events.NoStream()},
		{"batch runs past the stored one", []events.EventData{batch[0], batch[1], newEvent("storetest.happened.v1", 8)}, events.NoStream()},
		{"second id differs with any", []events.EventData{batch[0], newEvent("storetest.happened.v1", 9)}, events.Any()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), stream, tt.expected, tt.batch)
			if !errors.Is(err, events.ErrWrongExpectedVersion) {
				t.Fatalf("err = %v, want wrong expected version", err)
			}
		})
	}
	checkRecorded(t, stream, 0, batch, readStream(t, s, stream))

	// The same batch at another place than the expectation points to is no resend.
	t.Run("stored at another place", func(t *testing.T) {
		stream := scope() + "-2"
		mustAppend(t, s, stream, events.NoStream(), newEvents("storetest.before.v1", 1))
		batch := newEvents("storetest.happened.v1", 2)
		mustAppend(t, s, stream, events.Exact(0), batch)
		for _, exp := range []events.Expected{events.NoStream(), events.Exact(1)} {
			_, err := s.Append(t.Context(), stream, exp, batch)
			if !errors.Is(err, events.ErrWrongExpectedVersion) {
				t.Errorf("resend with %s: err = %v, want wrong expected version", exp, err)
			}
		}
		if n := len(readStream(t, s, stream)); n != 3 {
			t.Errorf("stream has %d events, want 3", n)
		}
	})
}

// testIDsPerStream: an event id already stored in one stream is a new event in another
// (esdb-protocol-notes §7 item 12).
func testIDsPerStream(t *testing.T, s events.Store) {
	sc := scope()
	e := newEvent("storetest.happened.v1", 0)
	first := mustAppend(t, s, sc+"-1", events.NoStream(), []events.EventData{e})
	second := mustAppend(t, s, sc+"-2", events.NoStream(), []events.EventData{e})
	if second.Position.Compare(first.Position) <= 0 {
		t.Errorf("second append at %s is not after the first at %s", second.Position, first.Position)
	}
	checkRecorded(t, sc+"-1", 0, []events.EventData{e}, readStream(t, s, sc+"-1"))
	checkRecorded(t, sc+"-2", 0, []events.EventData{e}, readStream(t, s, sc+"-2"))
}

func testReadStreamRange(t *testing.T, s events.Store) {
	stream := scope() + "-1"
	sent := newEvents("storetest.happened.v1", 5)
	mustAppend(t, s, stream, events.NoStream(), sent)
	tests := []struct {
		from uint64
		max  int
		want []events.EventData
	}{
		{0, 100, sent},
		{0, 2, sent[:2]},
		{2, 2, sent[2:4]},
		{3, 100, sent[3:]},
		{4, 1, sent[4:]},
		{5, 10, nil},
		{9, 10, nil},
	}
	for _, tt := range tests {
		got, err := s.ReadStream(t.Context(), stream, tt.from, tt.max)
		if err != nil {
			t.Errorf("read from %d max %d: %v", tt.from, tt.max, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("read from %d max %d: %d events, want %d", tt.from, tt.max, len(got), len(tt.want))
			continue
		}
		checkRecorded(t, stream, tt.from, tt.want, got)
	}
}

func testReadStreamNotFound(t *testing.T, s events.Store) {
	stream := scope() + "-missing"
	for _, from := range []uint64{0, 3} {
		recs, err := s.ReadStream(t.Context(), stream, from, 10)
		if !errors.Is(err, events.ErrStreamNotFound) {
			t.Errorf("read missing stream from %d: %d events, err = %v, want ErrStreamNotFound", from, len(recs), err)
		}
	}
}

func testReadAllPositions(t *testing.T, s events.Store) {
	sc := scope()
	from := marker(t, s, sc)
	type appended struct {
		stream string
		evs    []events.EventData
		res    events.AppendResult
	}
	var batches []appended
	var want []events.EventData
	for i := range 6 {
		stream := fmt.Sprintf("%s-%d", sc, i%3)
		evs := newEvents("storetest.happened.v1", 1+i%3)
		res := mustAppend(t, s, stream, events.Any(), evs)
		batches = append(batches, appended{stream, evs, res})
		want = append(want, evs...)
	}
	got := readScoped(t, s, from, sc, len(want))
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	checkIncreasing(t, got)
	i := 0
	for _, b := range batches {
		for j, e := range b.evs {
			r := got[i]
			if r.ID != e.ID || r.Stream != b.stream {
				t.Fatalf("event %d in $all = %s in %s, want %s in %s (append order)", i, r.ID, r.Stream, e.ID, b.stream)
			}
			if j == len(b.evs)-1 && r.Position != b.res.Position {
				t.Errorf("append to %s returned position %s, the event reads back at %s", b.stream, b.res.Position, r.Position)
			}
			i++
		}
	}
}

func testReadAllExclusive(t *testing.T, s events.Store) {
	sc := scope()
	from := marker(t, s, sc)
	stream := sc + "-1"
	var results []events.AppendResult
	for i := range 3 {
		results = append(results, mustAppend(t, s, stream, events.Any(), []events.EventData{newEvent("storetest.happened.v1", i)}))
	}
	readScoped(t, s, from, sc, 3) // wait until all three are visible
	got := readScoped(t, s, results[0].Position, sc, 2)
	if len(got) != 2 || got[0].Version != 1 || got[1].Version != 2 {
		var vs []uint64
		for _, r := range got {
			vs = append(vs, r.Version)
		}
		t.Fatalf("read all after the first event: versions %v, want [1 2]", vs)
	}
	if got := readScoped(t, s, results[2].Position, sc, 0); len(got) != 0 {
		t.Errorf("read all after the last event returned %d of our events, want 0", len(got))
	}
}

// next receives one event or fails the test.
func next(t *testing.T, sub events.Subscription) events.RecordedEvent {
	t.Helper()
	select {
	case e, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended early: %v", sub.Err())
		}
		return e
	case <-time.After(wait):
		t.Fatalf("no event within %s", wait)
	}
	return events.RecordedEvent{}
}

// expectNone fails if the subscription delivers anything within quiet.
func expectNone(t *testing.T, sub events.Subscription) {
	t.Helper()
	select {
	case e, ok := <-sub.Events():
		if ok {
			t.Fatalf("unexpected event %s (%s in %s v%d)", e.ID, e.Type, e.Stream, e.Version)
		}
		t.Fatalf("subscription ended: %v", sub.Err())
	case <-time.After(quiet):
	}
}

func subscribe(t *testing.T, s events.Store, from events.Position, f events.Filter) events.Subscription {
	t.Helper()
	sub, err := s.SubscribeAll(t.Context(), from, f)
	if err != nil {
		t.Fatalf("subscribe from %s: %v", from, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// receive takes len(want) events and checks they are want, in order, at increasing positions.
func receive(t *testing.T, sub events.Subscription, want []events.EventData) []events.RecordedEvent {
	t.Helper()
	var got []events.RecordedEvent
	for i, e := range want {
		r := next(t, sub)
		if r.ID != e.ID || r.Type != e.Type {
			t.Fatalf("event %d = %s (%s), want %s (%s)", i, r.ID, r.Type, e.ID, e.Type)
		}
		if !jsonEqual(r.Data, e.Data) {
			t.Errorf("event %d data = %s, want %s", i, r.Data, e.Data)
		}
		got = append(got, r)
	}
	checkIncreasing(t, got)
	return got
}

func testSubscribeCatchUpLive(t *testing.T, s events.Store) {
	sc := scope()
	stream := sc + "-1"
	old := newEvents("storetest.happened.v1", 3)
	var first events.AppendResult
	for i, e := range old {
		res := mustAppend(t, s, stream, events.Any(), []events.EventData{e})
		if i == 0 {
			first = res
		}
	}
	sub := subscribe(t, s, first.Position, events.Filter{StreamPrefixes: []string{sc}})
	caught := receive(t, sub, old[1:])
	live := newEvents("storetest.live.v1", 3)
	for _, e := range live {
		mustAppend(t, s, stream, events.Any(), []events.EventData{e})
	}
	got := receive(t, sub, live)
	if got[0].Position.Compare(caught[len(caught)-1].Position) <= 0 {
		t.Errorf("first live event at %s is not after the last caught-up one at %s", got[0].Position, caught[len(caught)-1].Position)
	}
	expectNone(t, sub)
}

func testSubscribeFilterType(t *testing.T, s events.Store) {
	sc := scope()
	from := marker(t, s, sc)
	sub := subscribe(t, s, from, events.Filter{StreamPrefixes: []string{sc}, TypePrefixes: []string{"storetest.wanted."}})
	wanted := newEvents("storetest.wanted.v1", 2)
	mustAppend(t, s, sc+"-1", events.Any(), []events.EventData{newEvent("storetest.unwanted.v1", 0), wanted[0]})
	mustAppend(t, s, sc+"-2", events.Any(), []events.EventData{newEvent("storetest.other.v1", 0), wanted[1], newEvent("storetest.wantedx.v1", 1)})
	receive(t, sub, wanted)
	expectNone(t, sub)
}

func testSubscribeFilterStream(t *testing.T, s events.Store) {
	sc := scope()
	from := marker(t, s, sc)
	sub := subscribe(t, s, from, events.Filter{StreamPrefixes: []string{sc + "a-", sc + "c-"}})
	a := newEvents("storetest.happened.v1", 2)
	c := newEvents("storetest.happened.v1", 1)
	mustAppend(t, s, sc+"b-1", events.Any(), newEvents("storetest.happened.v1", 2))
	mustAppend(t, s, sc+"a-1", events.Any(), a[:1])
	mustAppend(t, s, sc+"b-2", events.Any(), newEvents("storetest.happened.v1", 1))
	mustAppend(t, s, sc+"c-1", events.Any(), c)
	mustAppend(t, s, sc+"a-2", events.Any(), a[1:])
	got := receive(t, sub, []events.EventData{a[0], c[0], a[1]})
	for i, want := range []string{sc + "a-1", sc + "c-1", sc + "a-2"} {
		if got[i].Stream != want {
			t.Errorf("event %d stream = %s, want %s", i, got[i].Stream, want)
		}
	}
	expectNone(t, sub)
}

func testSubscribeSkipsSystem(t *testing.T, s events.Store) {
	sc := scope()
	from := marker(t, s, sc)
	sub := subscribe(t, s, from, events.Filter{StreamPrefixes: []string{sc}})
	system := newEvent("$test", 0)
	normal := newEvent("storetest.happened.v1", 1)
	mustAppend(t, s, sc+"-1", events.Any(), []events.EventData{system})
	mustAppend(t, s, sc+"-1", events.Any(), []events.EventData{normal})
	receive(t, sub, []events.EventData{normal})
	expectNone(t, sub)
}

func testSubscribeEnds(t *testing.T, s events.Store) {
	sc := scope()
	from := marker(t, s, sc)
	drained := func(t *testing.T, sub events.Subscription) {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case _, ok := <-sub.Events():
				if !ok {
					if err := sub.Err(); err != nil {
						t.Errorf("Err after a clean end = %v, want nil", err)
					}
					return
				}
			case <-timeout:
				t.Fatal("the events channel was not closed")
			}
		}
	}
	t.Run("close", func(t *testing.T) {
		sub := subscribe(t, s, from, events.Filter{StreamPrefixes: []string{sc}})
		if err := sub.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		drained(t, sub)
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		sub, err := s.SubscribeAll(ctx, from, events.Filter{StreamPrefixes: []string{sc}})
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Close()
		cancel()
		drained(t, sub)
	})
}

func testConcurrentNoStream(t *testing.T, s events.Store) {
	stream := scope() + "-1"
	const writers = 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   []events.EventData
		others []error
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			e := newEvent("storetest.claimed.v1", i)
			<-start
			_, err := s.Append(t.Context(), stream, events.NoStream(), []events.EventData{e})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, e)
			} else {
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d NoStream appends succeeded, want exactly 1", len(wins))
	}
	for _, err := range others {
		wantWrongVersion(t, err, stream, 0)
	}
	checkRecorded(t, stream, 0, wins, readStream(t, s, stream))
}

// testConcurrentWriters runs writers in parallel, each appending batches to its own stream, while
// a subscription that started before the first append collects everything: it must see each
// event exactly once, in one order of strictly increasing positions, with every stream in order,
// and that order must be the one ReadAll returns.
func testConcurrentWriters(t *testing.T, s events.Store) {
	const (
		writers = 8
		perW    = 1000
		batch   = 10
	)
	sc := scope()
	from := marker(t, s, sc)
	sub := subscribe(t, s, from, events.Filter{StreamPrefixes: []string{sc}})

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("%s-w%d", sc, w)
			exp := events.NoStream()
			for b := 0; b < perW/batch; b++ {
				evs := make([]events.EventData, batch)
				for i := range evs {
					evs[i] = newEvent("storetest.written.v1", b*batch+i)
				}
				res, err := s.Append(t.Context(), stream, exp, evs)
				if err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
					return
				}
				exp = events.Exact(res.NextVersion)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	const total = writers * perW
	seen := make(map[uuid.UUID]bool, total)
	nextVersion := make(map[string]uint64)
	got := make([]events.RecordedEvent, 0, total)
	for len(got) < total {
		r := next(t, sub)
		if seen[r.ID] {
			t.Fatalf("event %s (%s v%d) delivered twice", r.ID, r.Stream, r.Version)
		}
		seen[r.ID] = true
		if r.Version != nextVersion[r.Stream] {
			t.Fatalf("%s: got version %d, want %d", r.Stream, r.Version, nextVersion[r.Stream])
		}
		nextVersion[r.Stream]++
		if n := len(got); n > 0 && r.Position.Compare(got[n-1].Position) <= 0 {
			t.Fatalf("event %d at %s is not after event %d at %s", n, r.Position, n-1, got[n-1].Position)
		}
		got = append(got, r)
	}
	expectNone(t, sub)

	all := readScoped(t, s, from, sc, total)
	if len(all) != total {
		t.Fatalf("read all: %d events, want %d", len(all), total)
	}
	for i := range all {
		if all[i].ID != got[i].ID || all[i].Position != got[i].Position {
			t.Fatalf("read all event %d = %s at %s, subscription delivered %s at %s", i, all[i].ID, all[i].Position, got[i].ID, got[i].Position)
		}
	}
}
