-- +goose Up
-- Read models of the "workspaces" projector: live workspaces (a deleted one is removed), and
-- which workspace each project is in, followed from project.created/moved/deleted. The
-- membership rows of a deleted workspace stay until the workspace-cleanup process manager has
-- moved its projects out; it finds them here.
CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    owner_id   uuid        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX workspaces_owner_created ON workspaces (owner_id, created_at, id);

CREATE TABLE workspace_projects (
    project_id   uuid PRIMARY KEY,
    workspace_id uuid NOT NULL
);
CREATE INDEX workspace_projects_workspace ON workspace_projects (workspace_id);

-- +goose Down
DROP TABLE workspace_projects;
DROP TABLE workspaces;
