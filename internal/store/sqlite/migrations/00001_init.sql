-- regward schema, SQLite dialect. Times are INTEGER microseconds since the
-- Unix epoch, UTC: they sort and compare as numbers and keep more than the
-- millisecond precision the store contract promises.

-- +goose Up
CREATE TABLE orgs (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    server_admin  INTEGER NOT NULL DEFAULT 0 CHECK (server_admin IN (0, 1)),
    created_at    INTEGER NOT NULL
);

CREATE TABLE members (
    org        TEXT NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
    username   TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org, username)
);
CREATE INDEX members_by_user ON members (username, org);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('personal', 'gateway', 'session')),
    username     TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    org          TEXT REFERENCES orgs (name) ON DELETE CASCADE, -- NULL for gateway tokens
    name         TEXT NOT NULL DEFAULT '',
    hash         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX tokens_by_org ON tokens (org, kind, username);
CREATE INDEX tokens_by_user ON tokens (username);

CREATE TABLE policies (
    org        TEXT PRIMARY KEY REFERENCES orgs (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version > 0),
    policy     TEXT NOT NULL, -- policy.Policy as JSON
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

-- scope is '' for the server-wide lists, else an org name.
CREATE TABLE catalogs (
    scope      TEXT PRIMARY KEY,
    catalog    TEXT NOT NULL, -- policy.Catalog as JSON
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

-- AUTOINCREMENT: IDs are paging cursors and must never be reused, even
-- after the newest rows are gone.
CREATE TABLE activity (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org         TEXT NOT NULL DEFAULT '',
    occurred_at INTEGER NOT NULL,
    actor       TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    summary     TEXT NOT NULL DEFAULT '',
    diff        TEXT,
    version     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX activity_by_org ON activity (org, id);
CREATE INDEX activity_by_kind ON activity (org, kind, id);
CREATE INDEX activity_by_actor ON activity (actor, id);
CREATE INDEX activity_by_time ON activity (occurred_at);

CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at INTEGER NOT NULL,
    org         TEXT NOT NULL DEFAULT '',
    username    TEXT NOT NULL DEFAULT '',
    host        TEXT NOT NULL DEFAULT '',
    port        INTEGER NOT NULL DEFAULT 0,
    method      TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL DEFAULT '',
    image       TEXT NOT NULL DEFAULT '',
    digest      TEXT NOT NULL DEFAULT '',
    category    TEXT NOT NULL DEFAULT '',
    rule        TEXT NOT NULL DEFAULT '',
    allowed     INTEGER NOT NULL CHECK (allowed IN (0, 1)),
    reason      TEXT NOT NULL DEFAULT '',
    gateway     TEXT NOT NULL DEFAULT ''
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
