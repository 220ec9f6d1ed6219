-- +goose Up
-- A domain's DNS challenge token is derived from the server secret and the domain ID whenever it
-- is shown or checked (secret.Keyring.DomainChallenge), so no table keeps it.
ALTER TABLE custom_domains DROP COLUMN challenge_token;

-- +goose Down
ALTER TABLE custom_domains ADD COLUMN challenge_token text NOT NULL DEFAULT '';
