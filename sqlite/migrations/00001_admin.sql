-- Admins, roles, sessions, API keys, rate limits and the audit chain.
-- Times are INTEGER unix microseconds (NULL for a zero time.Time); hashes are BLOBs.

-- +goose Up
CREATE TABLE roles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    -- sorted, unique, space separated
    permissions TEXT    NOT NULL DEFAULT '',
    builtin     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER,
    updated_at  INTEGER
) STRICT;

INSERT INTO roles (id, name, description, permissions, builtin, created_at, updated_at) VALUES
    (1, 'owner', 'everything',
        'admins:manage audit:read commerce:refund commerce:write content:write ledger:approve ledger:read players:ban players:read reservations:write roles:manage rooms:manage rooms:read stats:read',
        1, CAST(unixepoch('subsec') * 1000000 AS INTEGER), CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    (2, 'operator', 'runs the game: players, rooms, content, reservations',
        'audit:read content:write players:ban players:read reservations:write rooms:manage rooms:read stats:read',
        1, CAST(unixepoch('subsec') * 1000000 AS INTEGER), CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    (3, 'support', 'helps players',
        'players:ban players:read reservations:write rooms:read',
        1, CAST(unixepoch('subsec') * 1000000 AS INTEGER), CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    (4, 'finance', 'money: commerce, refunds, ledger',
        'commerce:refund commerce:write ledger:approve ledger:read stats:read',
        1, CAST(unixepoch('subsec') * 1000000 AS INTEGER), CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    (5, 'viewer', 'reads everything, changes nothing',
        'audit:read ledger:read players:read rooms:read stats:read',
        1, CAST(unixepoch('subsec') * 1000000 AS INTEGER), CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE admins (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE,
    role_id             INTEGER NOT NULL REFERENCES roles (id),
    disabled            INTEGER NOT NULL DEFAULT 0,
    password_hash       TEXT    NOT NULL DEFAULT '',
    password_changed_at INTEGER,
    mfa_secret          TEXT    NOT NULL DEFAULT '',
    mfa_pending         TEXT    NOT NULL DEFAULT '',
    mfa_last_step       INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER,
    updated_at          INTEGER
) STRICT;

CREATE INDEX admins_role_id ON admins (role_id);

CREATE TABLE admin_recovery_codes (
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    hash     BLOB    NOT NULL,
    used_at  INTEGER,
    PRIMARY KEY (admin_id, hash)
) STRICT;

CREATE TABLE admin_devices (
    admin_id     INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    hash         BLOB    NOT NULL,
    created_at   INTEGER,
    last_seen_at INTEGER,
    PRIMARY KEY (admin_id, hash)
) STRICT;

CREATE TABLE admin_sessions (
    token_hash   BLOB    PRIMARY KEY,
    admin_id     INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at   INTEGER,
    last_seen_at INTEGER,
    expires_at   INTEGER,
    mfa_passed   INTEGER NOT NULL DEFAULT 0,
    reauth_at    INTEGER,
    address      TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX admin_sessions_admin_id ON admin_sessions (admin_id);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);
CREATE INDEX admin_sessions_last_seen_at ON admin_sessions (last_seen_at);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    role_id      INTEGER NOT NULL REFERENCES roles (id),
    prefix       TEXT    NOT NULL DEFAULT '',
    hash         BLOB    NOT NULL UNIQUE,
    -- no foreign key: keys made from the CLI have no creating admin (0)
    created_by   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_keys_role_id ON api_keys (role_id);

CREATE TABLE rate_limits (
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key, window_start, window_end)
) STRICT;

CREATE INDEX rate_limits_window_end ON rate_limits (window_end);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_kind  TEXT    NOT NULL DEFAULT '',
    actor_id    INTEGER NOT NULL DEFAULT 0,
    actor_name  TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL DEFAULT '',
    target_type TEXT    NOT NULL DEFAULT '',
    target_id   TEXT    NOT NULL DEFAULT '',
    before      TEXT    NOT NULL DEFAULT '',
    after       TEXT    NOT NULL DEFAULT '',
    address     TEXT    NOT NULL DEFAULT '',
    result      TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    prev_hash   BLOB    NOT NULL DEFAULT x'',
    hash        BLOB    NOT NULL
) STRICT;

-- Each search filter has an index ending in seq, so a page is an index
-- range read backwards from the cursor.
CREATE INDEX audit_log_at ON audit_log (at, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor_name ON audit_log (actor_name, seq);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, seq);
CREATE INDEX audit_log_result ON audit_log (result, seq);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd

-- INSERT OR REPLACE deletes the old row without firing DELETE triggers
-- (recursive triggers are off): refuse an insert onto an existing seq.
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd

-- The chain head: the one row writers lock to append.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL DEFAULT x''
) STRICT;

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, x'');

CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB    NOT NULL,
    at        INTEGER NOT NULL,
    key_id    TEXT    NOT NULL DEFAULT '',
    signature BLOB    NOT NULL DEFAULT x''
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_replace BEFORE INSERT ON audit_checkpoints
WHEN EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE rate_limits;
DROP TABLE api_keys;
DROP TABLE admin_sessions;
DROP TABLE admin_devices;
DROP TABLE admin_recovery_codes;
DROP TABLE admins;
DROP TABLE roles;
