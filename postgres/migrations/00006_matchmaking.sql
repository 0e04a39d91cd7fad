-- Matchmaking: the queues' configurations (the web server's copy, which
-- the queue mirror writes to the bus) and the matches nodes report.
-- Expand-only: older code ignores these tables and the new permission.

-- +goose Up
-- The new permission matchmaking:manage, held by the built-in owner and
-- operator roles (built-in roles cannot be edited, so their sets are
-- known). Permissions stay sorted.
UPDATE roles SET permissions = '{admins:manage,audit:read,commerce:refund,commerce:write,content:write,ledger:approve,ledger:read,matchmaking:manage,players:ban,players:read,players:write,reservations:write,roles:manage,rooms:manage,rooms:read,stats:read}'
    WHERE id = 1 AND name = 'owner' AND builtin;
UPDATE roles SET permissions = '{audit:read,content:write,matchmaking:manage,players:ban,players:read,players:write,reservations:write,rooms:manage,rooms:read,stats:read}'
    WHERE id = 2 AND name = 'operator' AND builtin;

-- config is the tandem.MatchQueue as JSON, read and written whole: a
-- field added to it needs no migration.
CREATE TABLE match_queues (
    name       TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

-- One row per committed match, keyed by the match id, so an event
-- delivered twice is stored once. Queue names and player ids are not
-- foreign keys: matches come from the bus and outlive their queue.
CREATE TABLE matches (
    id       TEXT PRIMARY KEY,
    queue    TEXT NOT NULL,
    room_id  TEXT NOT NULL DEFAULT '',
    node     TEXT NOT NULL DEFAULT '',
    -- JSON [][]string: the players' ids by team.
    players  TEXT NOT NULL DEFAULT '[]',
    wait_ms  BIGINT NOT NULL DEFAULT 0,
    backfill BOOLEAN NOT NULL DEFAULT FALSE,
    at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX matches_queue_at ON matches (queue, at);

-- +goose Down
DROP TABLE matches;
DROP TABLE match_queues;

UPDATE roles SET permissions = '{admins:manage,audit:read,commerce:refund,commerce:write,content:write,ledger:approve,ledger:read,players:ban,players:read,players:write,reservations:write,roles:manage,rooms:manage,rooms:read,stats:read}'
    WHERE id = 1 AND name = 'owner' AND builtin;
UPDATE roles SET permissions = '{audit:read,content:write,players:ban,players:read,players:write,reservations:write,rooms:manage,rooms:read,stats:read}'
    WHERE id = 2 AND name = 'operator' AND builtin;
