-- The cluster as the web server records it: the outbox of node commands,
-- the events realtime nodes publish, the realtime sessions those events
-- describe and the nodes seen in the registry. Times are INTEGER unix
-- microseconds (NULL for a zero time.Time).

-- +goose Up
-- The outbox: a command is written in the transaction of its audit record
-- and the relay delivers it.
CREATE TABLE node_commands (
    id           TEXT    PRIMARY KEY,
    node         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    player_id    TEXT    NOT NULL DEFAULT '',
    room_id      TEXT    NOT NULL DEFAULT '',
    text         TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    result_ok    INTEGER NOT NULL DEFAULT 0,
    result_error TEXT    NOT NULL DEFAULT '',
    delivered_at INTEGER
) STRICT;
CREATE INDEX node_commands_created_at ON node_commands (created_at, id);
CREATE INDEX node_commands_pending ON node_commands (created_at, id) WHERE state = 'pending';

-- Events keep the node's ids, so a redelivered event is stored once.
CREATE TABLE cluster_events (
    id          TEXT    PRIMARY KEY,
    node        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    session_id  TEXT    NOT NULL DEFAULT '',
    player_id   TEXT    NOT NULL DEFAULT '',
    room_id     TEXT    NOT NULL DEFAULT '',
    room_type   TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    close_code  INTEGER NOT NULL DEFAULT 0,
    -- microseconds
    duration    INTEGER NOT NULL DEFAULT 0,
    -- JSON arrays and objects, read and written whole
    rtt_ms      TEXT    NOT NULL DEFAULT '',
    level       TEXT    NOT NULL DEFAULT '',
    attrs       TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX cluster_events_room ON cluster_events (room_id, at) WHERE room_id <> '';
CREATE INDEX cluster_events_node ON cluster_events (node, at);

-- Player ids are not foreign keys: events come from the bus and may name
-- players this database does not hold (yet).
CREATE TABLE realtime_sessions (
    id         TEXT    PRIMARY KEY,
    node       TEXT    NOT NULL,
    player_id  TEXT    NOT NULL DEFAULT '',
    opened_at  INTEGER,
    closed_at  INTEGER,
    close_code INTEGER NOT NULL DEFAULT 0,
    reason     TEXT    NOT NULL DEFAULT '',
    duration   INTEGER NOT NULL DEFAULT 0,
    rtt_ms     TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX realtime_sessions_player ON realtime_sessions (player_id, opened_at);
CREATE INDEX realtime_sessions_open ON realtime_sessions (node) WHERE closed_at IS NULL;

CREATE TABLE cluster_nodes (
    id             TEXT    PRIMARY KEY,
    url            TEXT    NOT NULL DEFAULT '',
    version        TEXT    NOT NULL DEFAULT '',
    first_seen     INTEGER,
    last_heartbeat INTEGER,
    down_at        INTEGER
) STRICT;

-- The ban mirror lists every account ban still to come or in force.
CREATE INDEX player_bans_account_open ON player_bans (player_id, id) WHERE scope = 'account' AND lifted_at IS NULL;

-- +goose Down
DROP INDEX player_bans_account_open;
DROP TABLE cluster_nodes;
DROP TABLE realtime_sessions;
DROP TABLE cluster_events;
DROP TABLE node_commands;
