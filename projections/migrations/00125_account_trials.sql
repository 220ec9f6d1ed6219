-- +goose Up
-- The end of an account's running trial (account.trial_started.v1), NULL when it has none or it
-- ended (account.trial_ended.v1). GET /v1/user shows it; the trial process finds due trials by it.
ALTER TABLE accounts ADD COLUMN trial_ends_at timestamptz;
CREATE INDEX accounts_trial_ends_at ON accounts (trial_ends_at) WHERE trial_ends_at IS NOT NULL;

-- +goose Down
DROP INDEX accounts_trial_ends_at;
ALTER TABLE accounts DROP COLUMN trial_ends_at;
