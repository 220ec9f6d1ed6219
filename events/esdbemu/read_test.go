package esdbemu_test

import (
	"slices"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Items 16-21: stream reads.
func TestReadStream(t *testing.T) {
	_, c := start(t)
	s := uniq("r")
	mustAppend(t, c, s, esdb.NoStream{}, evs(5)...)
	tests := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{"item 16: forwards from 2, count 2", esdb.ReadStreamOptions{From: esdb.Revision(2)}, 2, []uint64{2, 3}},
		{"item 17: forwards past the end", esdb.ReadStreamOptions{From: esdb.Revision(9)}, 10, []uint64{}},
		{"forwards from start", esdb.ReadStreamOptions{From: esdb.Start{}}, 10, []uint64{0, 1, 2, 3, 4}},
		{"item 18: backwards from end, count 2", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2, []uint64{4, 3}},
		{"item 18: backwards from 2", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(2)}, 10, []uint64{2, 1, 0}},
		{"backwards past the end is from the end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(9)}, 1, []uint64{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readStream(t, c, s, tt.opts, tt.count)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, revisions(got)); diff != "" {
				t.Errorf("revisions (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("item 19: missing stream", func(t *testing.T) {
		rs, err := c.ReadStream(t.Context(), uniq("none"), esdb.ReadStreamOptions{}, 10)
		if err != nil {
			t.Fatalf("ReadStream itself failed: %v (want the error on the first Recv)", err)
		}
		defer rs.Close()
		if _, err := rs.Recv(); code(err) != esdb.ErrorCodeResourceNotFound {
			t.Errorf("first Recv = %v, want ResourceNotFound", err)
		}
	})

	t.Run("item 21: stream events carry their $all positions", func(t *testing.T) {
		got, _ := readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
		all := readAll(t, c, esdb.ReadAllOptions{}, 100)
		byID := map[string]esdb.Position{}
		for _, e := range all {
			byID[e.Event.EventID.String()] = e.Event.Position
		}
		for _, e := range got {
			if e.Commit == nil || *e.Commit != e.Event.Position.Commit {
				t.Errorf("rev %d: ReadEvent commit = %v, event position %+v", e.Event.EventNumber, e.Commit, e.Event.Position)
			}
			if byID[e.Event.EventID.String()] != e.Event.Position {
				t.Errorf("rev %d: position %+v, $all has %+v", e.Event.EventNumber, e.Event.Position, byID[e.Event.EventID.String()])
			}
		}
	})
}

// Items 22-24: $all reads.
func TestReadAll(t *testing.T) {
	_, c := start(t)
	for range 3 {
		mustAppend(t, c, uniq("all"), esdb.Any{}, evData("x"))
	}
	all := readAll(t, c, esdb.ReadAllOptions{}, 100)
	if len(all) != 3 {
		t.Fatalf("$all has %d events, want 3", len(all))
	}
	e1, e2, e3 := all[0].Event, all[1].Event, all[2].Event

	fwd := readAll(t, c, esdb.ReadAllOptions{From: e2.Position}, 10)
	if len(fwd) != 2 || fwd[0].Event.EventID != e2.EventID {
		t.Errorf("item 22: forwards from E2 starts with %v, want E2 (inclusive)", fwd)
	}
	back := readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: e2.Position}, 10)
	if len(back) != 1 || back[0].Event.EventID != e1.EventID {
		t.Errorf("item 23: backwards from E2 = %d events, want only E1 (exclusive)", len(back))
	}
	end := readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10)
	if len(end) != 3 || end[0].Event.EventID != e3.EventID {
		t.Errorf("item 23: backwards from end does not start at the newest")
	}
	if n := len(readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}}, 10)); n != 0 {
		t.Errorf("forwards from end = %d events, want 0", n)
	}
	for name, list := range map[string][]*esdb.ResolvedEvent{"forwards": all, "backwards": end} {
		for i, e := range list {
			p := e.Event.Position
			if p.Commit != p.Prepare || p.Commit == 0 {
				t.Errorf("item 24 %s: position %+v, want commit == prepare > 0", name, p)
			}
			if i == 0 {
				continue
			}
			prev := list[i-1].Event.Position.Commit
			if (name == "forwards" && p.Commit <= prev) || (name == "backwards" && p.Commit >= prev) {
				t.Errorf("item 24 %s: positions not strictly monotonic at %d", name, i)
			}
		}
	}
	if n := len(readAll(t, c, esdb.ReadAllOptions{From: esdb.Position{Commit: 1 << 40, Prepare: 1 << 40}}, 10)); n != 0 {
		t.Errorf("forwards from past the end = %d events, want 0", n)
	}
	rs, err := c.ReadAll(t.Context(), esdb.ReadAllOptions{From: esdb.Position{Commit: e2.Position.Commit + 1, Prepare: e2.Position.Commit + 1}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain(rs); err == nil {
		t.Errorf("read from inside a record succeeded, want invalid position")
	}
}

// Items 47 and 48 [raw], and item 20 for raw reads: only event messages, ids in string form
// on request, and no backwards subscriptions.
func TestReadRaw(t *testing.T) {
	srv, c := start(t)
	s := uniq("raw")
	in := evData("x")
	mustAppend(t, c, s, esdb.NoStream{}, in)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := streams.NewStreamsClient(conn)

	read, err := api.Read(t.Context(), &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_Stream{Stream: &streams.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(s)},
			RevisionOption:   &streams.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &streams.ReadReq_Options_Count{Count: 10},
		FilterOption: &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for {
		m, err := read.Recv()
		if err != nil {
			break
		}
		kinds = append(kinds, "event")
		if got := m.GetEvent().GetEvent().GetId().GetString_(); got != in.EventID.String() {
			t.Errorf("item 47: string id = %q, want %s", got, in.EventID)
		}
	}
	if !slices.Equal(kinds, []string{"event"}) {
		t.Errorf("item 20: messages = %v", kinds)
	}

	sub, err := api.Read(t.Context(), &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption:  &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
		ReadDirection: streams.ReadReq_Options_Backwards,
		CountOption:   &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}},
		FilterOption:  &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("item 48: backwards subscription = %v, want InvalidArgument", err)
	}
}
