-- +goose Up
-- Fixed-window request counters shared by every API instance (commands.Limiter): one row per
-- bucket, e.g. "otp-request-ip:203.0.113.7". A window starts at the first request after the
-- previous one ended.
CREATE TABLE rate_limits (
    bucket       text        PRIMARY KEY,
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL
);
CREATE INDEX rate_limits_window_start ON rate_limits (window_start);

-- +goose Down
DROP TABLE rate_limits;
