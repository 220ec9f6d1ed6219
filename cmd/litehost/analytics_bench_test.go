package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSiteServing compares serving a page with link-open recording on (the instance's
// handler: the analytics hook, the pipeline and its batch writer storing every view in
// PostgreSQL while the benchmark runs) against the same site server with no hook at all, in
// the same process, on the same database. One b.N operation is one page view on each side.
// x-off-ops/s is throughput with recording over throughput without (1 = free); x-off-p99 the
// same for the 99th-percentile latency. dropped/op counts views the pipeline had to drop, stored/op
// the views stored (about 1 plus the warm-up's share: the recording really ran).
func BenchmarkSiteServing(b *testing.B) {
	e := newBenchEnv(b)
	ctx := b.Context()
	slugs := make([]string, len(e.projects))
	for i, id := range e.projects {
		if err := e.app.pool.QueryRow(ctx, `SELECT slug FROM projects WHERE id = $1`, id).Scan(&slugs[i]); err != nil {
			b.Fatalf("slug: %v", err)
		}
	}
	bare := httptest.NewServer(e.app.sites)
	b.Cleanup(bare.Close)
	view := func(base string) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
			if err != nil {
				return err
			}
			req.Host = slugs[i%len(slugs)] + "." + e.app.cfg.SitesDomain
			req.Header.Set("User-Agent", uaChrome)
			req.Header.Set("Accept", "text/html")
			resp, err := e.client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("site = %d", resp.StatusCode)
			}
			return nil
		}
	}
	droppedBefore := e.app.analytics.pipeline.Dropped()
	on, off := compare(b, side{"recording on", benchWorkers, view(e.url)}, side{"recording off", benchWorkers, view(bare.URL)})
	b.ReportMetric(on.opsPerSec()/off.opsPerSec(), "x-off-ops/s")
	onP99, offP99 := percentile(on.lat, 0.99), percentile(off.lat, 0.99)
	b.ReportMetric(float64(onP99)/float64(offP99), "x-off-p99")
	b.ReportMetric(on.opsPerSec(), "on-ops/s")
	b.ReportMetric(off.opsPerSec(), "off-ops/s")
	b.ReportMetric(ms(onP99), "on-p99-ms")
	b.ReportMetric(ms(offP99), "off-p99-ms")
	b.ReportMetric(float64(e.app.analytics.pipeline.Dropped()-droppedBefore)/float64(b.N), "dropped/op")
	// The recording side really stored its views (the warm-up's included): wait for the writer.
	var stored int64
	for range 50 {
		if err := e.app.pool.QueryRow(ctx, `SELECT count(*) FROM site_visits`).Scan(&stored); err != nil {
			b.Fatalf("count visits: %v", err)
		}
		if stored >= int64(b.N) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.ReportMetric(float64(stored)/float64(b.N), "stored/op")
}
