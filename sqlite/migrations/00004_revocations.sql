-- Token revocations: "log out everywhere" and account deletion refuse the
-- player's realtime tokens issued before a moment. The ban mirror copies
-- the unexpired ones to the bus; the sweep deletes the expired ones.

-- +goose Up
-- One row per player: a later revocation reaches further and replaces it.
-- Player ids are not foreign keys: a row outlives nothing it names by
-- more than a token's lifetime.
CREATE TABLE token_revocations (
    player_id     TEXT    PRIMARY KEY,
    issued_before INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX token_revocations_expires_at ON token_revocations (expires_at);

-- +goose Down
DROP TABLE token_revocations;
