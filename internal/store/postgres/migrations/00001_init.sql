-- regward schema, PostgreSQL dialect.

-- +goose Up
CREATE TABLE orgs (
    name       text PRIMARY KEY,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    username      text PRIMARY KEY,
    password_hash text NOT NULL,
    server_admin  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL
);

CREATE TABLE members (
    org        text NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    username   text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'member')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org, username)
);
CREATE INDEX members_by_user ON members (username, org);

CREATE TABLE tokens (
    id           text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('personal', 'gateway', 'session')),
    username     text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    org          text REFERENCES orgs (name) ON DELETE CASCADE, -- NULL for gateway tokens
    name         text NOT NULL DEFAULT '',
    hash         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX tokens_by_org ON tokens (org, kind, username);
CREATE INDEX tokens_by_user ON tokens (username);

CREATE TABLE policies (
    org        text PRIMARY KEY REFERENCES orgs (name) ON DELETE CASCADE,
    version    bigint NOT NULL CHECK (version > 0),
    policy     jsonb NOT NULL, -- policy.Policy
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL DEFAULT ''
);

-- scope is '' for the server-wide lists, else an org name.
CREATE TABLE catalogs (
    scope      text PRIMARY KEY,
    catalog    jsonb NOT NULL, -- policy.Catalog
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL DEFAULT ''
);

CREATE TABLE activity (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org         text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL,
    actor       text NOT NULL DEFAULT '',
    kind        text NOT NULL,
    target      text NOT NULL DEFAULT '',
    summary     text NOT NULL DEFAULT '',
    diff        json, -- json, not jsonb: the diff comes back byte for byte
    version     bigint NOT NULL DEFAULT 0
);
CREATE INDEX activity_by_org ON activity (org, id);
CREATE INDEX activity_by_kind ON activity (org, kind, id);
CREATE INDEX activity_by_actor ON activity (actor, id);
CREATE INDEX activity_by_time ON activity (occurred_at);

CREATE TABLE decisions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    org         text NOT NULL DEFAULT '',
    username    text NOT NULL DEFAULT '',
    host        text NOT NULL DEFAULT '',
    port        integer NOT NULL DEFAULT 0,
    method      text NOT NULL DEFAULT '',
    action      text NOT NULL DEFAULT '',
    image       text NOT NULL DEFAULT '',
    digest      text NOT NULL DEFAULT '',
    category    text NOT NULL DEFAULT '',
    rule        text NOT NULL DEFAULT '',
    allowed     boolean NOT NULL,
    reason      text NOT NULL DEFAULT '',
    gateway     text NOT NULL DEFAULT ''
);
CREATE INDEX decisions_by_org_time ON decisions (org, occurred_at);
CREATE INDEX decisions_by_org_id ON decisions (org, id);
CREATE INDEX decisions_by_user ON decisions (org, username, id);
CREATE INDEX decisions_by_host ON decisions (org, host, id);
CREATE INDEX decisions_by_allowed ON decisions (org, allowed, id);
CREATE INDEX decisions_by_time ON decisions (occurred_at);

-- +goose Down
DROP TABLE decisions;
DROP TABLE activity;
DROP TABLE catalogs;
DROP TABLE policies;
DROP TABLE tokens;
DROP TABLE members;
DROP TABLE users;
DROP TABLE orgs;
