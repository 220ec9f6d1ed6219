package commands_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// A command's events record the fingerprint of the request that made them; a later request
// under the same command ID is a replay only with the same fingerprint, at any age (no
// idempotency row is involved here at all).
func TestExecutorReplayNeedsTheSameRequest(t *testing.T) {
	_, store := newMigratedStore(t, slog.New(slog.DiscardHandler))
	x := commands.NewExecutor(store)
	cmdID := uuid.New()
	stream := workspace.Stream(uuid.NewString())
	created := func(name string) commands.Decider {
		return func(s commands.Stream) ([]events.Event, error) {
			return []events.Event{events.WorkspaceCreated{WorkspaceID: "w1", OwnerID: "a1", Name: name, At: time.Now().UTC()}}, nil
		}
	}
	ctxA := commands.WithRequestFingerprint(t.Context(), "fp-a")
	first, err := x.Execute(ctxA, cmdID, stream, created("A"))
	pgtest.Must(t, err, "first")
	if first.Replayed {
		t.Fatal("first execution reported as a replay")
	}
	s, err := commands.Load(t.Context(), store, stream)
	pgtest.Must(t, err, "load")
	md, err := events.ParseMetadata(s.Records[0].Metadata)
	if err != nil || md.RequestFingerprint != "fp-a" {
		t.Fatalf("metadata = %+v, %v; want the request fingerprint recorded", md, err)
	}

	// The same request: the first result, decide not called.
	again, err := x.Execute(ctxA, cmdID, stream, func(commands.Stream) ([]events.Event, error) {
		t.Error("decide ran on a replay")
		return nil, nil
	})
	pgtest.Must(t, err, "replay")
	if !again.Replayed || len(again.Events) != 1 || again.Position != first.Position {
		t.Errorf("replay = %+v, first %+v", again, first)
	}

	// Another request under the same command ID: refused, nothing decided or appended.
	ctxB := commands.WithRequestFingerprint(t.Context(), "fp-b")
	_, err = x.Execute(ctxB, cmdID, stream, func(commands.Stream) ([]events.Event, error) {
		t.Error("decide ran for another request")
		return nil, nil
	})
	if !errors.Is(err, commands.ErrIdempotencyKeyReused) {
		t.Errorf("other request = %v, want ErrIdempotencyKeyReused", err)
	}
	// AppendNew goes through the same check.
	if _, err := x.AppendNew(ctxB, cmdID, stream, nil); !errors.Is(err, commands.ErrIdempotencyKeyReused) {
		t.Errorf("AppendNew for another request = %v", err)
	}

	// A caller without a fingerprint (a process manager, a request without a key) is unknown:
	// today's replay, as before fingerprints existed.
	if r, err := x.Execute(t.Context(), cmdID, stream, created("C")); err != nil || !r.Replayed {
		t.Errorf("unknown fingerprint = %+v, %v; want a replay", r, err)
	}
	if s, _ := commands.Load(t.Context(), store, stream); len(s.Records) != 1 {
		t.Errorf("stream has %d events, want 1", len(s.Records))
	}
}

// Events appended before fingerprints were recorded carry none: any request replays them.
func TestExecutorReplaysEventsWithoutFingerprint(t *testing.T) {
	_, store := newMigratedStore(t, slog.New(slog.DiscardHandler))
	x := commands.NewExecutor(store)
	cmdID := uuid.New()
	stream := workspace.Stream(uuid.NewString())
	ev := events.WorkspaceCreated{WorkspaceID: "w1", OwnerID: "a1", Name: "Old", At: time.Now().UTC()}
	d, err := events.Encode(ev, commands.EventID(cmdID, stream, 0), events.Metadata{Actor: "account:a1"})
	pgtest.Must(t, err, "encode")
	_, err = store.Append(t.Context(), stream, events.NoStream(), []events.EventData{d})
	pgtest.Must(t, err, "append")
	ctx := commands.WithRequestFingerprint(t.Context(), "fp-new")
	r, err := x.Execute(ctx, cmdID, stream, func(commands.Stream) ([]events.Event, error) {
		t.Error("decide ran on a replay")
		return nil, nil
	})
	if err != nil || !r.Replayed || len(r.Events) != 1 {
		t.Errorf("old event = %+v, %v; want a replay", r, err)
	}
}
