-- Players: accounts, guest devices, sessions and the refresh tokens they
-- used, logins, bans and admin notes; and the realtime token signing keys.
-- Times are INTEGER unix microseconds (NULL for a zero time.Time); hashes are BLOBs.

-- +goose Up
-- The new permission players:write, held by the built-in owner, operator
-- and support roles (built-in roles cannot be edited, so their sets are
-- known). Permissions stay sorted and space separated.
UPDATE roles SET permissions =
    'admins:manage audit:read commerce:refund commerce:write content:write ledger:approve ledger:read players:ban players:read players:write reservations:write roles:manage rooms:manage rooms:read stats:read'
    WHERE id = 1 AND name = 'owner' AND builtin = 1;
UPDATE roles SET permissions =
    'audit:read content:write players:ban players:read players:write reservations:write rooms:manage rooms:read stats:read'
    WHERE id = 2 AND name = 'operator' AND builtin = 1;
UPDATE roles SET permissions =
    'players:ban players:read players:write reservations:write rooms:read'
    WHERE id = 3 AND name = 'support' AND builtin = 1;

-- A deleted account keeps its row (a tombstone: id and times only), so
-- ledgers and the audit log still name a player that existed; rows are
-- never deleted.
CREATE TABLE players (
    id            TEXT    PRIMARY KEY,
    display_name  TEXT    NOT NULL DEFAULT '',
    -- lower-cased; NULL for a guest, so any number of guests coexist
    email         TEXT    UNIQUE,
    password_hash TEXT    NOT NULL DEFAULT '',
    locale        TEXT    NOT NULL DEFAULT '',
    avatar_url    TEXT    NOT NULL DEFAULT '',
    -- matchmaking properties: a JSON object of strings
    mm            TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER,
    updated_at    INTEGER,
    last_login_at INTEGER,
    deleted_at    INTEGER
) STRICT;

-- The admin's player search lists newest first.
CREATE INDEX players_created_at ON players (created_at, id);

CREATE TABLE player_devices (
    -- the device id the client chose
    id           TEXT    PRIMARY KEY,
    player_id    TEXT    NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER,
    last_seen_at INTEGER
) STRICT;

CREATE INDEX player_devices_player_id ON player_devices (player_id);

CREATE TABLE player_sessions (
    id                 TEXT    PRIMARY KEY,
    player_id          TEXT    NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    method             TEXT    NOT NULL DEFAULT '',
    access_hash        BLOB    NOT NULL UNIQUE,
    access_expires_at  INTEGER,
    refresh_hash       BLOB    NOT NULL UNIQUE,
    refresh_expires_at INTEGER,
    -- SHA-256 of the device id logged in with; NULL if none
    device_hash        BLOB,
    address            TEXT    NOT NULL DEFAULT '',
    user_agent         TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER,
    last_used_at       INTEGER
) STRICT;

CREATE INDEX player_sessions_player_id ON player_sessions (player_id);
CREATE INDEX player_sessions_refresh_expires_at ON player_sessions (refresh_expires_at);
CREATE INDEX player_sessions_device_hash ON player_sessions (device_hash);

-- The refresh tokens each session already used: presenting one again is
-- reuse, which revokes the session. They go with their session.
CREATE TABLE player_refresh_used (
    hash       BLOB    PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES player_sessions (id) ON DELETE CASCADE,
    used_at    INTEGER
) STRICT;

CREATE INDEX player_refresh_used_session_id ON player_refresh_used (session_id);
CREATE INDEX player_refresh_used_used_at ON player_refresh_used (used_at);

-- id only orders logins made in the same microsecond.
CREATE TABLE player_logins (
    id         INTEGER PRIMARY KEY,
    player_id  TEXT    NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    method     TEXT    NOT NULL DEFAULT '',
    device_id  TEXT    NOT NULL DEFAULT '',
    address    TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX player_logins_player_id_at ON player_logins (player_id, at);
CREATE INDEX player_logins_at ON player_logins (at);

-- No cascade from players: player rows are never deleted. A device ban
-- keeps only the device id's hash, so it outlives the account's deletion.
CREATE TABLE player_bans (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    player_id       TEXT    NOT NULL REFERENCES players (id),
    scope           TEXT    NOT NULL CHECK (scope IN ('account', 'device')),
    device_hash     BLOB,
    reason          TEXT    NOT NULL DEFAULT '',
    starts_at       INTEGER NOT NULL,
    -- NULL: permanent
    ends_at         INTEGER,
    -- no foreign key: 0 for an API key or the CLI
    created_by      INTEGER NOT NULL DEFAULT 0,
    created_by_name TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER,
    lifted_at       INTEGER,
    lifted_by       INTEGER NOT NULL DEFAULT 0,
    lifted_by_name  TEXT    NOT NULL DEFAULT '',
    -- a device ban names its device (coalesce: a NULL would pass a CHECK)
    CHECK (scope = 'account' OR coalesce(length(device_hash), 0) > 0)
) STRICT;

CREATE INDEX player_bans_player_id ON player_bans (player_id);
CREATE INDEX player_bans_device_hash ON player_bans (device_hash);

CREATE TABLE player_notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    player_id  TEXT    NOT NULL REFERENCES players (id),
    -- no foreign key: 0 for an API key or the CLI
    admin_id   INTEGER NOT NULL DEFAULT 0,
    admin_name TEXT    NOT NULL DEFAULT '',
    text       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER
) STRICT;

CREATE INDEX player_notes_player_id ON player_notes (player_id);

-- Realtime token signing keys; the private key is sealed with the key
-- encryption key from configuration.
CREATE TABLE signing_keys (
    id              TEXT    PRIMARY KEY,
    public_key      BLOB    NOT NULL,
    private_key_enc BLOB    NOT NULL,
    created_at      INTEGER,
    retired_at      INTEGER,
    expires_at      INTEGER
) STRICT;

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE player_notes;
DROP TABLE player_bans;
DROP TABLE player_logins;
DROP TABLE player_refresh_used;
DROP TABLE player_sessions;
DROP TABLE player_devices;
DROP TABLE players;

UPDATE roles SET permissions =
    'admins:manage audit:read commerce:refund commerce:write content:write ledger:approve ledger:read players:ban players:read reservations:write roles:manage rooms:manage rooms:read stats:read'
    WHERE id = 1 AND name = 'owner' AND builtin = 1;
UPDATE roles SET permissions =
    'audit:read content:write players:ban players:read reservations:write rooms:manage rooms:read stats:read'
    WHERE id = 2 AND name = 'operator' AND builtin = 1;
UPDATE roles SET permissions =
    'players:ban players:read reservations:write rooms:read'
    WHERE id = 3 AND name = 'support' AND builtin = 1;
