-- +goose Up
-- Read models of the "accounts" projector: accounts with the limits their plan event carried,
-- sign-in sessions, and API keys by HMAC (the bearer-key middleware's one indexed lookup).
CREATE TABLE accounts (
    id                     uuid PRIMARY KEY,
    email                  text,
    phone                  text,
    plan                   text        NOT NULL,
    max_projects           integer     NOT NULL,
    max_storage_bytes      bigint      NOT NULL,
    max_files_per_project  integer     NOT NULL,
    max_visitors_per_month integer     NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX accounts_email ON accounts (email) WHERE email IS NOT NULL;
CREATE INDEX accounts_phone ON accounts (phone) WHERE phone IS NOT NULL;

CREATE TABLE sessions (
    session_id         uuid PRIMARY KEY,
    account_id         uuid        NOT NULL,
    started_at         timestamptz NOT NULL,
    refreshed_at       timestamptz,
    refresh_expires_at timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoke_reason      text
);
CREATE INDEX sessions_account ON sessions (account_id);

-- key_hash is HMAC-SHA256(LITEHOST_SECRET, "api-key", key) in hex; keys never appear in clear.
CREATE TABLE api_keys (
    key_hash   text PRIMARY KEY,
    account_id uuid        NOT NULL,
    session_id uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_keys_session ON api_keys (session_id);

-- Maintained by the projects projector (active = not archived, not expired); created here so
-- that GET /v1/user can join it before any project exists. A missing row means zero.
CREATE TABLE account_usage (
    account_id      uuid PRIMARY KEY,
    active_projects integer NOT NULL DEFAULT 0,
    storage_bytes   bigint  NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE account_usage;
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE accounts;
