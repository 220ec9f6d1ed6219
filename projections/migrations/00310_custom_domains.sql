-- +goose Up
-- Read models of the "domains" projector: live custom domains (a removed one is deleted), and the
-- projects assigned to each, followed from the domainId of project settings. Title and slug are
-- kept here so GET /v1/domains/{id} and the custom-host lookup read this projector's tables only.
CREATE TABLE custom_domains (
    id              uuid PRIMARY KEY,
    owner_id        uuid        NOT NULL,
    hostname        text        NOT NULL,
    status          text        NOT NULL,
    challenge_token text        NOT NULL,
    verified_at     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX custom_domains_owner_created ON custom_domains (owner_id, created_at, id);
CREATE INDEX custom_domains_hostname ON custom_domains (hostname);

CREATE TABLE domain_projects (
    project_id uuid PRIMARY KEY,
    domain_id  uuid        NOT NULL,
    title      text        NOT NULL,
    slug       text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX domain_projects_domain ON domain_projects (domain_id, created_at);
CREATE INDEX domain_projects_slug ON domain_projects (slug);

-- +goose Down
DROP TABLE domain_projects;
DROP TABLE custom_domains;
