-- +goose Up
-- Read models of the "projects" projector: one row per live project (deleted projects are
-- removed with their history), and every deployment of each. account_usage (created by 00100) is
-- kept up to date by the same projector.
CREATE TABLE projects (
    id                   uuid PRIMARY KEY,
    owner_id             uuid,                       -- NULL while a temporary project is unclaimed
    workspace_id         uuid,
    domain_id            uuid,
    temporary            boolean     NOT NULL,
    claim_token_hash     text,                       -- keyed hash; the token is never stored
    title                text        NOT NULL,
    slug                 text        NOT NULL,
    type                 text        NOT NULL,
    status               text        NOT NULL,       -- public | private (expired is derived)
    access               text        NOT NULL,       -- public | password | private
    password_hash        text,                       -- argon2id PHC string
    no_index             boolean     NOT NULL,
    disable_downloads    boolean     NOT NULL,
    page_title           text,
    meta_description     text,
    analytics_enabled    boolean     NOT NULL,
    expires_at           timestamptz,
    archived_at          timestamptz,
    expired_at           timestamptz,
    active_deployment_id uuid        NOT NULL,
    manifest_hash        text        NOT NULL,       -- of the active deployment
    index_path           text        NOT NULL,
    file_count           integer     NOT NULL,
    size_bytes           bigint      NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX projects_owner_created ON projects (owner_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX projects_slug ON projects (slug);
CREATE UNIQUE INDEX projects_claim ON projects (claim_token_hash) WHERE claim_token_hash IS NOT NULL;
-- The expiry process manager's scan: projects whose expiry has not fired yet.
CREATE INDEX projects_due ON projects (expires_at) WHERE expires_at IS NOT NULL AND expired_at IS NULL;

CREATE TABLE deployments (
    deployment_id uuid PRIMARY KEY,
    project_id    uuid        NOT NULL,
    version       integer     NOT NULL,
    manifest_hash text        NOT NULL,
    type          text        NOT NULL,
    index_path    text        NOT NULL,
    file_count    integer     NOT NULL,
    size_bytes    bigint      NOT NULL,
    rollback_of   uuid,
    created_at    timestamptz NOT NULL,
    UNIQUE (project_id, version)
);

-- +goose Down
DROP TABLE deployments;
DROP TABLE projects;
