-- Screenshots: the last few frames each screen sent (the service keeps
-- KEEP_SCREENSHOTS per screen, src/central/db.rs), as JPEG. BYTEA is
-- PostgreSQL's byte string; SQLite stores the bytes as a BLOB whatever the
-- declared type. Times are ms since 1970: taken_at by the kiosk's clock,
-- received_at by the service's.
CREATE TABLE screenshots (
    screen_id TEXT NOT NULL REFERENCES screens (id),
    taken_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    jpeg BYTEA NOT NULL,
    PRIMARY KEY (screen_id, taken_at)
);

-- When the office asked the screen for a screenshot and has not had one
-- since (the heartbeat's answer says so); NULL when nothing is asked.
ALTER TABLE screens ADD COLUMN screenshot_asked_at BIGINT;
