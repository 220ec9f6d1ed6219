package projections

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

const benchEvents = 5000

// BenchmarkRebuild measures a rebuild that writes one row per event against the baseline of
// DESIGN §13: a COPY of the same rows. Compare the events/s of the two sub-benchmarks (the
// budget is rebuild ≥ 0.25× copy).
func BenchmarkRebuild(b *testing.B) {
	e := newEnv(b)
	_, err := e.pool.Exec(b.Context(), `CREATE TABLE pbench_rows (stream text NOT NULL, version bigint NOT NULL, n int NOT NULL, PRIMARY KEY (stream, version));
		CREATE TABLE pbench_copy (LIKE pbench_rows INCLUDING ALL)`)
	pgtest.Must(b, err, "create bench tables")
	var rows [][]any
	for i := 0; i < benchEvents; i += 100 {
		stream := fmt.Sprintf("acc-%d", i/100)
		data := make([]events.EventData, 100)
		for j := range data {
			d, err := events.Encode(added{Key: "k", N: i + j}, uuid.New(), events.Metadata{Actor: "system:bench"})
			pgtest.Must(b, err, "encode")
			data[j] = d
			rows = append(rows, []any{stream, int64(j), i + j})
		}
		_, err := e.store.Append(b.Context(), stream, events.NoStream(), data)
		pgtest.Must(b, err, "append")
	}
	projector := Projector{
		Name:   "pbench",
		Tables: []string{"pbench_rows"},
		Handlers: []cqrs.GroupEventHandler{cqrs.NewGroupEventHandler(func(ctx context.Context, ev *added) error {
			info := Event(ctx)
			_, err := Tx(ctx).Exec(ctx, `INSERT INTO pbench_rows (stream, version, n) VALUES ($1, $2, $3)`, info.Stream, int64(info.Version), ev.N)
			return err
		})},
	}

	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			if err := Rebuild(b.Context(), e.pool, e.store, e.logger, nil, projector); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("copy-baseline", func(b *testing.B) {
		for b.Loop() {
			err := pgx.BeginFunc(b.Context(), e.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(b.Context(), `TRUNCATE pbench_copy`); err != nil {
					return err
				}
				_, err := tx.CopyFrom(b.Context(), pgx.Identifier{"pbench_copy"}, []string{"stream", "version", "n"}, pgx.CopyFromRows(rows))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
