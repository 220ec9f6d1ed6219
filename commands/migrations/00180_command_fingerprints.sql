-- +goose Up
-- The request fingerprint of every command sent with an Idempotency-Key that appended events,
-- kept after its idempotency_keys row is gone (24 h, or removed after a 5xx): another request
-- under the same key is refused at any age, before it runs, whichever streams it would touch.
-- The fingerprint is keyed (HMAC with the server secret) and holds nothing of a secret field.
CREATE TABLE command_fingerprints (
    command_id  uuid        PRIMARY KEY,
    fingerprint text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE command_fingerprints;
