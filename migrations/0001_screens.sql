-- Screens enrolled by the office, the office's API tokens, and each
-- screen's last heartbeat. Portable SQL: the same file runs on SQLite and
-- PostgreSQL. Times are milliseconds since 1970 (BIGINT); secrets are kept
-- only as salted SHA-256 hashes (hex).
CREATE TABLE screens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    token_salt TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    token_salt TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- One row per screen, replaced by each heartbeat; the body is the
-- validated heartbeat as JSON.
CREATE TABLE heartbeats (
    screen_id TEXT PRIMARY KEY REFERENCES screens (id),
    received_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
