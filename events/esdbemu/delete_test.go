package esdbemu_test

import (
	"math"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
)

// Items 25-29: soft delete.
func TestSoftDelete(t *testing.T) {
	_, c := start(t)
	s := uniq("sd")
	mustAppend(t, c, s, esdb.NoStream{}, evs(3)...)

	res, err := c.DeleteStream(t.Context(), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(2)})
	if err != nil || res.Position.Commit == 0 || res.Position.Commit != res.Position.Prepare {
		t.Fatalf("item 26: delete = %+v, %v", res, err)
	}
	if _, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 10); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Errorf("item 26: read after delete = %v, want not found", err)
	}

	var old, meta int
	for _, e := range readAll(t, c, esdb.ReadAllOptions{}, 100) {
		switch {
		case e.Event.StreamID == s:
			old++
		case e.Event.StreamID == "$$"+s && e.Event.EventType == "$metadata":
			meta++
		}
	}
	if old != 3 || meta != 1 {
		t.Errorf("item 25: $all has %d old events and %d $metadata events, want 3 and 1", old, meta)
	}

	if err := appendErr(t, c, s, esdb.StreamExists{}, evData("x")); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("item 28: stream_exists on soft-deleted = %v, want StreamDeleted", err)
	}
	if r := mustAppend(t, c, s, esdb.NoStream{}, evData("x")); r.NextExpectedVersion != 3 {
		t.Errorf("item 27: revived at revision %d, want 3", r.NextExpectedVersion)
	}
	got, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{3}, revisions(got)); diff != "" {
		t.Errorf("item 27: revisions after revival (-want +got):\n%s", diff)
	}

	if _, err := c.DeleteStream(t.Context(), uniq("never"), esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}}); err == nil {
		t.Errorf("item 29: deleting a stream that never existed succeeded")
	}
}

// Items 30-33: tombstones.
func TestTombstone(t *testing.T) {
	_, c := start(t)
	s := uniq("tomb")
	mustAppend(t, c, s, esdb.NoStream{}, evs(2)...)
	res, err := c.TombstoneStream(t.Context(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
	if err != nil || res.Position.Commit == 0 {
		t.Fatalf("item 30: tombstone = %+v, %v", res, err)
	}
	if err := appendErr(t, c, s, esdb.Any{}, evData("x")); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("item 30: append = %v, want StreamDeleted", err)
	}
	if _, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 10); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("item 30: read = %v, want StreamDeleted", err)
	}
	if _, err := c.SubscribeToStream(t.Context(), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}}); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("item 30: subscribe = %v, want StreamDeleted", err)
	}
	if _, err := c.TombstoneStream(t.Context(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("item 32: tombstone again = %v, want StreamDeleted", err)
	}
	if _, err := c.DeleteStream(t.Context(), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}}); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("item 32: delete after tombstone = %v, want StreamDeleted", err)
	}
	if _, err := c.TombstoneStream(t.Context(), uniq("never"), esdb.TombstoneStreamOptions{ExpectedRevision: esdb.NoStream{}}); err != nil {
		t.Errorf("item 31: tombstone a stream that never existed = %v", err)
	}
	found := false
	for _, e := range readAll(t, c, esdb.ReadAllOptions{}, 100) {
		if e.Event.StreamID == s && e.Event.EventType == "$streamDeleted" && e.Event.EventNumber == math.MaxInt64 {
			found = true
		}
	}
	if !found {
		t.Errorf("item 33: no $streamDeleted record with revision i64 max in $all")
	}
}
