package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/litehost/litehost/commands/forwarder"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/readapi"
)

// analyticsProcesses are the process managers that feed analytics consumers: the NATS JetStream
// forwarder when LITEHOST_NATS_URL is set (DESIGN §9), nothing otherwise.
func (a *app) analyticsProcesses() []func(context.Context) error {
	if a.forward == nil {
		return nil
	}
	return []func(context.Context) error{a.forward}
}

// newForwarder builds the forwarder and registers its metrics. A forwarder that cannot be built
// fails the background group at start, like any process manager that fails.
func (a *app) newForwarder() func(context.Context) error {
	if a.cfg.NATSURL == "" {
		return nil
	}
	f, err := forwarder.New(a.store, a.pool, forwarder.Config{URL: a.cfg.NATSURL}, a.logger)
	if err != nil {
		return func(context.Context) error { return err }
	}
	a.reg.MustRegister(f.Collectors()...)
	return f.Run
}

// eventStream is GET /v1/events/stream, behind LITEHOST_ADMIN_TOKEN (404 while it is unset).
func (a *app) eventStream() *readapi.EventStream {
	return readapi.NewEventStream(a.store, a.cfg.AdminToken, readapi.DefaultHeartbeat, a.logger)
}

// eventsCmd is `litehost events`: the global log in a terminal, straight from the event store.
func eventsCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Read the global event log"}
	var (
		types  string
		from   string
		asJSON bool
		follow bool
	)
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the events of the global log, then follow new ones until interrupted",
		Long: "Prints every event after --from (the start of the log by default) whose type starts with one of\n" +
			"--types, one per line: position, time, stream@version, type and actor; with --json, the same\n" +
			"JSON objects as the data of GET /v1/events/stream. Pass the last position printed as --from to resume.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			prefixes, err := readapi.ParseTypePrefixes(types)
			if err != nil {
				return fmt.Errorf("--types: %w", err)
			}
			start := events.Start
			if from != "" {
				if start, err = events.ParsePosition(from); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			filter := events.Filter{TypePrefixes: prefixes}
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				emit := func(rec events.RecordedEvent) error { return printEvent(stdout, rec, asJSON) }
				if !follow {
					return readEvents(ctx, a.store, start, filter, emit)
				}
				return tailEvents(ctx, a.store, start, filter, emit)
			})
		},
	}
	tail.Flags().StringVar(&types, "types", "", "comma-separated event-type prefixes, e.g. project.,account.")
	tail.Flags().StringVar(&from, "from", "", "start after this position (commit/prepare, as printed)")
	tail.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	tail.Flags().BoolVar(&follow, "follow", true, "keep following new events; --follow=false stops at the end of the log")
	cmd.AddCommand(tail)
	return cmd
}

// readEvents prints the log after from up to its current end.
func readEvents(ctx context.Context, store events.Store, from events.Position, filter events.Filter, emit func(events.RecordedEvent) error) error {
	for {
		page, err := store.ReadAll(ctx, from, 500)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, rec := range page {
			if filter.Match(rec.Stream, rec.Type) {
				if err := emit(rec); err != nil {
					return err
				}
			}
			from = rec.Position
		}
	}
}

// tailEvents prints the log after from and then new events until ctx ends (Ctrl-C), which is a
// normal end.
func tailEvents(ctx context.Context, store events.Store, from events.Position, filter events.Filter, emit func(events.RecordedEvent) error) error {
	sub, err := store.SubscribeAll(ctx, from, filter)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()
	for rec := range sub.Events() {
		if err := emit(rec); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sub.Err(); err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	return errors.New("subscription ended")
}

// printEvent prints rec's public form (events/public): a terminal's output ends up in files and
// pipes as easily as the SSE stream does, so it shows no more. Private types are skipped.
func printEvent(w io.Writer, rec events.RecordedEvent, asJSON bool) error {
	ev, ok, err := readapi.NewStreamEvent(rec)
	if err != nil {
		return fmt.Errorf("event at %s: %w", rec.Position, err)
	}
	if !ok {
		return nil
	}
	if asJSON {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event at %s: %w", rec.Position, err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	actor := ev.Metadata.Actor
	if actor == "" {
		actor = "-"
	}
	_, err = fmt.Fprintf(w, "%s  %s  %s@%d  %s  %s\n", rec.Position, rec.CreatedAt.UTC().Format(readapi.TimeLayout),
		rec.Stream, rec.Version, rec.Type, actor)
	return err
}
