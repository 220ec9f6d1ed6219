-- +goose Up
-- One row per projector (name = its persistent ID). The projector's read-model writes and the
-- advance of its row commit in one transaction, so the row says exactly which events the read
-- model contains. Positions are events.Position (commit, prepare) as signed bigints.
CREATE TABLE projection_checkpoints (
    name             text PRIMARY KEY,
    commit_pos       bigint      NOT NULL DEFAULT 0,
    prepare_pos      bigint      NOT NULL DEFAULT 0,
    -- created_at of the last applied event: lag in seconds is measured against it.
    event_created_at timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    state            text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'failed', 'stopped')),
    last_error       text        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE projection_checkpoints;
