// Package analytics records the page views of the hosted sites and answers the link-open report
// (GET /v1/projects/{id}/analytics, spec [S4]).
//
// Page views are not events. The site server's hook (Recorder) offers each one to a bounded
// Pipeline and never waits; the Pipeline's writer classifies a batch (Classifier: people,
// link previews, bots), recognises the owner's own views (OwnerTokens: a signed, host-only,
// HttpOnly cookie), keeps the country of the client address but not the address, and COPYs the
// batch into site_visits (Store), then publishes it (Feed: NATS and SSE). Prune enforces the
// retention period. Handler serves the report and the owner link.
package analytics
