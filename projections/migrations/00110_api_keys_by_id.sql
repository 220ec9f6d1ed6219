-- +goose Up
-- API keys by key ID (account.session_started.v2 / session_refreshed.v2) instead of by HMAC of
-- the key: a key is its ID plus a MAC of the ID under LITEHOST_SECRET, and only the ID is kept,
-- so nothing derived from a key's secret part is stored. Keys of the first format are retired
-- (their holders sign in again), so their rows go with the column.
DROP TABLE api_keys;
CREATE TABLE api_keys (
    key_id     uuid        PRIMARY KEY,
    account_id uuid        NOT NULL,
    session_id uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_keys_session ON api_keys (session_id);

-- +goose Down
DROP TABLE api_keys;
CREATE TABLE api_keys (
    key_hash   text PRIMARY KEY,
    account_id uuid        NOT NULL,
    session_id uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_keys_session ON api_keys (session_id);
