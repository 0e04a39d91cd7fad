-- The retention sweep deletes cluster events, finished node commands and
-- closed realtime sessions older than the cluster retention. Expand-only.

-- +goose Up
CREATE INDEX cluster_events_at ON cluster_events (at);
CREATE INDEX realtime_sessions_closed_at ON realtime_sessions (closed_at) WHERE closed_at IS NOT NULL;

-- +goose Down
DROP INDEX realtime_sessions_closed_at;
DROP INDEX cluster_events_at;
