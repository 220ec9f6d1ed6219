package esdbstore_test

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/esdbemu"
	"github.com/litehost/litehost/events/esdbstore"
)

// newEmuStore returns a store on a fresh emulator, closed at cleanup.
func newEmuStore(t *testing.T) *esdbstore.Store {
	t.Helper()
	srv, err := esdbemu.Start(t.Context())
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return dialStore(t, srv.URL())
}

func dialStore(t *testing.T, url string) *esdbstore.Store {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, err := esdbstore.Dial(url, logger)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return esdbstore.New(client, logger)
}

func ev(typ string) events.EventData {
	return events.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"a":1}`), Metadata: []byte(`{"actor":"system:test"}`)}
}

func uniq(prefix string) string { return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "") }

func TestSmoke(t *testing.T) {
	s := newEmuStore(t)
	ctx := t.Context()
	stream := uniq("smoke")
	res, err := s.Append(ctx, stream, events.NoStream(), []events.EventData{ev("smoke.a.v1"), ev("smoke.b.v1")})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.NextVersion != 1 || res.Position.IsZero() {
		t.Fatalf("append result = %+v", res)
	}
	_, err = s.Append(ctx, stream, events.NoStream(), []events.EventData{ev("smoke.c.v1")})
	var wev *events.WrongExpectedVersionError
	if !errors.As(err, &wev) || wev.Actual != 1 {
		t.Fatalf("conflict = %v, want WEV actual 1", err)
	}
	recs, err := s.ReadStream(ctx, stream, 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("read = %v, %v", recs, err)
	}
	if _, err := s.ReadStream(ctx, uniq("none"), 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
		t.Fatalf("read missing = %v", err)
	}
	all, err := s.ReadAll(ctx, recs[0].Position, 10)
	if err != nil || len(all) != 1 || all[0].ID != recs[1].ID {
		t.Fatalf("read all = %v, %v", all, err)
	}
	sub, err := s.SubscribeAll(ctx, recs[0].Position, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	select {
	case got := <-sub.Events():
		if got.ID != recs[1].ID {
			t.Fatalf("got %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timeout")
	}
}
