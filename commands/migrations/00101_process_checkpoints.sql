-- +goose Up
-- How far each process manager (the OTP mailer, …) has handled the global event log.
CREATE TABLE process_checkpoints (
    name        text        PRIMARY KEY,
    commit_pos  numeric(20) NOT NULL,
    prepare_pos numeric(20) NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE process_checkpoints;
