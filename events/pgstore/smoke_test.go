package pgstore_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
)

func TestSmoke(t *testing.T) {
	s := pgstore.New(pgtest.NewPool(t), slog.New(slog.DiscardHandler))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	sub, err := s.SubscribeAll(t.Context(), events.Start, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	evs := []events.EventData{{ID: uuid.New(), Type: "a.b.v1", Data: []byte(`{"x":1}`)}, {ID: uuid.New(), Type: "a.c.v1", Data: []byte(`{}`), Metadata: []byte(`{"m":2}`)}}
	res, err := s.Append(t.Context(), "a-1", events.NoStream(), evs)
	t.Logf("%+v %v", res, err)
	res, err = s.Append(t.Context(), "a-1", events.NoStream(), evs)
	t.Logf("%+v %v", res, err)
	res, err = s.Append(t.Context(), "a-1", events.NoStream(), evs[:1])
	t.Logf("%+v %v", res, err)
	recs, err := s.ReadStream(t.Context(), "a-1", 0, 10)
	t.Logf("%+v %v", recs, err)
	recs, err = s.ReadAll(t.Context(), events.Start, 10)
	t.Logf("%+v %v", recs, err)
	for range 2 {
		select {
		case e := <-sub.Events():
			t.Logf("sub %+v", e)
		case <-time.After(2 * time.Second):
			t.Fatal("timeout")
		}
	}
	sub.Close()
	t.Log(sub.Err())
}
