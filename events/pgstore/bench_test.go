package pgstore_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
)

// BenchmarkAppend compares Store.Append with a bare baseline: one multi-row INSERT of the same
// bytes into a table without the store's checks (DESIGN §13: Append ≥ 0.5× the baseline). The two
// alternate within each iteration so that both see the same machine state; "append/insert" is the
// baseline's time divided by the append's, i.e. the append's relative throughput.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run("events="+strconv.Itoa(n), func(b *testing.B) {
			s, pool := newStore(b)
			ctx := b.Context()
			if _, err := pool.Exec(ctx, `CREATE TABLE baseline (
				id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				stream_id text NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,
				data jsonb NOT NULL, metadata jsonb)`); err != nil {
				b.Fatalf("create baseline table: %v", err)
			}
			meta := events.Metadata{CorrelationID: uuid.NewString(), CausationID: uuid.NewString(), Actor: "account:" + uuid.NewString(), RequestID: uuid.NewString(), ClientIP: "203.0.113.7", UserAgent: "bench/1.0"}.Marshal()
			batch := func() []events.EventData {
				evs := make([]events.EventData, n)
				for i := range evs {
					evs[i] = events.EventData{
						ID:       uuid.New(),
						Type:     "project.version_pushed.v1",
						Data:     fmt.Appendf(nil, `{"projectId":%q,"version":%d,"manifestSha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","fileCount":12,"totalBytes":48213,"at":"2026-04-09T14:23:00.000Z"}`, uuid.NewString(), i),
						Metadata: meta,
					}
				}
				return evs
			}
			var appendTime, insertTime time.Duration
			for b.Loop() {
				evs := batch()
				stream := "project-" + uuid.NewString()
				t0 := time.Now()
				if _, err := s.Append(ctx, stream, events.NoStream(), evs); err != nil {
					b.Fatalf("append: %v", err)
				}
				t1 := time.Now()

				evs = batch()
				ids := make([]uuid.UUID, n)
				types, data, metas := make([]string, n), make([]string, n), make([]string, n)
				for i, e := range evs {
					ids[i], types[i], data[i], metas[i] = e.ID, e.Type, string(e.Data), string(e.Metadata)
				}
				t2 := time.Now()
				if _, err := pool.Exec(ctx, `INSERT INTO baseline (stream_id, event_id, event_type, data, metadata)
					SELECT $1, id, typ, d::jsonb, m::jsonb FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS b(id, typ, d, m)`,
					"project-"+uuid.NewString(), ids, types, data, metas); err != nil {
					b.Fatalf("baseline insert: %v", err)
				}
				appendTime += t1.Sub(t0)
				insertTime += time.Since(t2)
			}
			b.ReportMetric(float64(appendTime.Nanoseconds())/float64(b.N), "append-ns")
			b.ReportMetric(float64(insertTime.Nanoseconds())/float64(b.N), "insert-ns")
			b.ReportMetric(float64(insertTime)/float64(appendTime), "append/insert")
		})
	}
}
