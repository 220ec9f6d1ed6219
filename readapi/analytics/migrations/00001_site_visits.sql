-- +goose Up
-- Page views of the hosted sites (GET /v1/projects/{id}/analytics). They are not events: there
-- are far too many, they carry no decision, and they are pruned after LITEHOST_ANALYTICS_RETENTION.
-- No client address is kept: only the country it maps to.
CREATE TABLE site_visits (
    project_id uuid        NOT NULL,
    at         timestamptz NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('person', 'preview', 'owner')),
    entry      boolean     NOT NULL,  -- false for a navigation from another page of the same site
    country    text,                  -- ISO 3166-1 alpha-2; NULL when unknown
    device     text,
    browser    text,
    os         text,
    referrer   text,                  -- origin (scheme://host) of the Referer only
    path       text        NOT NULL
);
CREATE INDEX site_visits_project_at ON site_visits (project_id, at DESC);
-- Rows arrive in time order, so a BRIN index serves the retention prune at a tiny size.
CREATE INDEX site_visits_at ON site_visits USING brin (at);

-- +goose Down
DROP TABLE site_visits;
