package esdbemu_test

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/litehost/litehost/events/esdbemu"
)

// Items 1 and 2: revisions and positions of a write.
func TestAppendRevisionAndPosition(t *testing.T) {
	_, c := start(t)
	s := uniq("a")
	res := mustAppend(t, c, s, esdb.NoStream{}, evData("x"))
	if res.NextExpectedVersion != 0 || res.CommitPosition == 0 || res.CommitPosition != res.PreparePosition {
		t.Fatalf("item 1: result = %+v, want revision 0, commit == prepare > 0", res)
	}
	mustAppend(t, c, s, esdb.Any{}, evData("x"), evData("x"))
	res = mustAppend(t, c, s, esdb.Any{}, evs(3)...)
	if res.NextExpectedVersion != 5 {
		t.Fatalf("item 2: revision = %d, want 5", res.NextExpectedVersion)
	}
	got, err := readStream(t, c, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := got[0].OriginalEvent().Position; p.Commit != res.CommitPosition || p.Prepare != res.PreparePosition {
		t.Errorf("item 2: position of rev 5 = %+v, append returned %+v", p, res)
	}
}

// Items 3-5: wrong expected versions are in-band and reach v4 as ErrorCodeWrongExpectedVersion.
func TestAppendWrongExpectedVersion(t *testing.T) {
	_, c := start(t)
	s := uniq("wev")
	if err := appendErr(t, c, s, esdb.StreamExists{}, evData("x")); code(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Errorf("item 3: stream_exists on no stream: %v", err)
	}
	if err := appendErr(t, c, s, esdb.Revision(0), evData("x")); code(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Errorf("item 4: revision 0 on no stream: %v", err)
	}
	mustAppend(t, c, s, esdb.NoStream{}, evs(2)...)
	err := appendErr(t, c, s, esdb.Revision(0), evData("x"))
	if code(err) != esdb.ErrorCodeWrongExpectedVersion || !bytes.Contains([]byte(err.Error()), []byte("got '1'")) {
		t.Errorf("item 5: revision 0 at rev 1: %v, want WEV with current 1", err)
	}
	if err := appendErr(t, c, s, esdb.Revision(5), evData("x")); code(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Errorf("item 5: revision 5 at rev 1: %v", err)
	}
	if err := appendErr(t, c, s, esdb.NoStream{}, evData("x")); code(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Errorf("no_stream on an existing stream: %v", err)
	}
}

// Items 6-12: strong and weak idempotency.
func TestAppendIdempotency(t *testing.T) {
	_, c := start(t)
	count := func(s string) int {
		got, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}

	t.Run("item 6: no_stream resend", func(t *testing.T) {
		s := uniq("i6")
		ab := evs(2)
		first := mustAppend(t, c, s, esdb.NoStream{}, ab...)
		again := mustAppend(t, c, s, esdb.NoStream{}, ab...)
		if again.NextExpectedVersion != 1 || again.CommitPosition != first.CommitPosition {
			t.Errorf("resend = %+v, first = %+v", again, first)
		}
		if n := count(s); n != 2 {
			t.Errorf("events = %d, want 2", n)
		}
	})
	t.Run("item 7: any resend", func(t *testing.T) {
		s := uniq("i7")
		ab := evs(2)
		mustAppend(t, c, s, esdb.Any{}, ab...)
		if again := mustAppend(t, c, s, esdb.Any{}, ab...); again.NextExpectedVersion != 1 {
			t.Errorf("resend revision = %d, want 1", again.NextExpectedVersion)
		}
	})
	t.Run("item 8: any resend after later events", func(t *testing.T) {
		s := uniq("i8")
		ab := evs(2)
		mustAppend(t, c, s, esdb.NoStream{}, ab...)
		mustAppend(t, c, s, esdb.Any{}, evData("c"))
		if again := mustAppend(t, c, s, esdb.Any{}, ab...); again.NextExpectedVersion != 1 {
			t.Errorf("resend revision = %d, want 1", again.NextExpectedVersion)
		}
		if n := count(s); n != 3 {
			t.Errorf("events = %d, want 3", n)
		}
	})
	t.Run("item 9: partial resends", func(t *testing.T) {
		s := uniq("i9")
		ab := evs(2)
		mustAppend(t, c, s, esdb.NoStream{}, ab...)
		x := evData("x")
		for name, tc := range map[string]struct {
			exp  esdb.ExpectedRevision
			data []esdb.EventData
		}{
			"[A,X] no_stream":   {esdb.NoStream{}, []esdb.EventData{ab[0], x}},
			"[A,B,X] no_stream": {esdb.NoStream{}, []esdb.EventData{ab[0], ab[1], x}},
			"[A,X] any":         {esdb.Any{}, []esdb.EventData{ab[0], x}},
		} {
			err := appendErr(t, c, s, tc.exp, tc.data...)
			if code(err) != esdb.ErrorCodeWrongExpectedVersion {
				t.Errorf("%s: %v, want WEV", name, err)
			}
			if name == "[A,X] any" && !bytes.Contains([]byte(err.Error()), []byte("expecting 'any'")) {
				t.Errorf("%s: %v, want expected_any", name, err)
			}
		}
		if n := count(s); n != 2 {
			t.Errorf("events = %d, want 2", n)
		}
	})
	t.Run("item 10: exact == current is not deduplicated", func(t *testing.T) {
		s := uniq("i10")
		a := evData("a")
		mustAppend(t, c, s, esdb.NoStream{}, a)
		if res := mustAppend(t, c, s, esdb.Revision(0), a); res.NextExpectedVersion != 1 {
			t.Errorf("revision = %d, want 1", res.NextExpectedVersion)
		}
		if n := count(s); n != 2 {
			t.Errorf("events = %d, want 2 (A twice)", n)
		}
	})
	t.Run("item 11: only the first id is checked", func(t *testing.T) {
		s := uniq("i11")
		a := evData("a")
		mustAppend(t, c, s, esdb.NoStream{}, a)
		mustAppend(t, c, s, esdb.Any{}, evData("x"), a)
		if n := count(s); n != 3 {
			t.Errorf("events = %d, want 3", n)
		}
	})
	t.Run("item 12: ids are per stream", func(t *testing.T) {
		s1, s2 := uniq("i12a"), uniq("i12b")
		a := evData("a")
		mustAppend(t, c, s1, esdb.Any{}, a)
		if res := mustAppend(t, c, s2, esdb.Any{}, a); res.NextExpectedVersion != 0 {
			t.Errorf("revision in s2 = %d, want 0", res.NextExpectedVersion)
		}
		if n := count(s2); n != 1 {
			t.Errorf("events in s2 = %d, want 1", n)
		}
	})
	t.Run("stream_exists resend", func(t *testing.T) {
		s := uniq("se")
		mustAppend(t, c, s, esdb.NoStream{}, evData("first"))
		b := evs(2)
		mustAppend(t, c, s, esdb.StreamExists{}, b...)
		if res := mustAppend(t, c, s, esdb.StreamExists{}, b...); res.NextExpectedVersion != 2 {
			t.Errorf("revision = %d, want 2", res.NextExpectedVersion)
		}
		if n := count(s); n != 3 {
			t.Errorf("events = %d, want 3", n)
		}
	})
}

// Item 13: what a read returns of an append.
func TestAppendReadBack(t *testing.T) {
	_, c := start(t)
	s := uniq("rb")
	in := esdb.EventData{EventID: evData("").EventID, EventType: "rb.v1", ContentType: esdb.ContentTypeJson,
		Data: []byte(`{ "spaced" : [1, 2] }`), Metadata: []byte(`{"correlationId":"c"}`)}
	bin := esdb.EventData{EventID: evData("").EventID, EventType: "bin.v1", ContentType: esdb.ContentTypeBinary, Data: []byte{0, 1, 2}}
	before := time.Now()
	mustAppend(t, c, s, esdb.NoStream{}, in, bin)
	got, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("read = %d events, %v", len(got), err)
	}
	e := got[0].Event
	if e.EventID != in.EventID || e.EventType != "rb.v1" || e.ContentType != "application/json" || e.StreamID != s {
		t.Errorf("event = %+v", e)
	}
	if !bytes.Equal(e.Data, in.Data) || !bytes.Equal(e.UserMetadata, in.Metadata) {
		t.Errorf("data/metadata not byte-identical: %q %q", e.Data, e.UserMetadata)
	}
	ticks, err := strconv.ParseInt(e.SystemMetadata["created"], 10, 64)
	if err != nil {
		t.Fatalf("created = %q: %v", e.SystemMetadata["created"], err)
	}
	if created := time.Unix(0, ticks*100); created.Before(before.Add(-time.Second)) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created = %v, want about now", created)
	}
	if len(e.SystemMetadata) != 3 {
		t.Errorf("system metadata = %v, want exactly type, content-type, created", e.SystemMetadata)
	}
	if ct := got[1].Event.ContentType; ct != "application/octet-stream" {
		t.Errorf("binary content type = %q", ct)
	}
}

// Item 14 [raw]: a proposed message without type fails with the server's trailers.
func TestAppendMissingType(t *testing.T) {
	srv, c := start(t)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := uniq("raw")
	var trailer metadata.MD
	app, err := streams.NewStreamsClient(conn).Append(t.Context(), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	_ = app.Send(&streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(s)},
		ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}})
	_ = app.Send(&streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: "5e2b8d3c-0c4b-4f2e-9d59-2f2f2f2f2f2f"}},
		Metadata: map[string]string{"content-type": "application/json"},
		Data:     []byte(`{}`),
	}}})
	_, err = app.CloseAndRecv()
	if status.Code(err) != codes.InvalidArgument || trailer.Get("exception")[0] != "missing-required-metadata-property" ||
		trailer.Get("required-metadata-properties")[0] != "type,content-type" {
		t.Fatalf("err = %v, trailers = %v", err, trailer)
	}
	if _, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 1); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Errorf("stream after the failed append: %v, want not found", err)
	}
}

// Item 15: a batch above MaxAppendSize fails and writes nothing.
func TestAppendMaxSize(t *testing.T) {
	_, c := start(t, esdbemu.WithMaxAppendSize(100))
	s := uniq("big")
	big := evData("big")
	big.Data = bytes.Repeat([]byte("x"), 101)
	if err := appendErr(t, c, s, esdb.Any{}, big); err == nil {
		t.Fatal("append above the limit succeeded")
	}
	if _, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 1); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Errorf("stream after the failed append: %v, want not found", err)
	}
}
