-- +goose Up
-- Credentials that must no longer work, written by the revoke, refresh and reuse-detection
-- commands right after their events are stored and before they answer (commands.Revocations).
-- The bearer-key check reads this table besides the projected api_keys, so a revocation holds
-- on every instance at once, whatever the accounts projector's lag or state. Only IDs: a row
-- names a session (all its keys) or one API key, never a secret or a hash of one. A row may go
-- once expires_at has passed: by then no credential it names can be valid any more.
CREATE TABLE revoked_credentials (
    id         uuid        PRIMARY KEY, -- a session ID (kind session) or an API key ID (kind api_key)
    kind       text        NOT NULL CHECK (kind IN ('session', 'api_key')),
    account_id uuid        NOT NULL,
    revoked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_credentials_expires_at ON revoked_credentials (expires_at);

-- +goose Down
DROP TABLE revoked_credentials;
