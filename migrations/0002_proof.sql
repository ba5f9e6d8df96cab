-- Proof of play: what each screen really showed, one row per interval
-- (src/core/proof.rs). A row is named by (screen, stream, seq) and stored
-- once however often the kiosk sends it (INSERT … ON CONFLICT DO NOTHING),
-- so an upload that is cut off and sent again counts once. Times are ms
-- since 1970; cont is 1 for a continuation (time, not a new play).
CREATE TABLE proof (
    screen_id TEXT NOT NULL REFERENCES screens (id),
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    cont INTEGER NOT NULL,
    playlist TEXT,
    item TEXT,
    feed_version BIGINT,
    identifier TEXT,
    sender TEXT,
    sent TEXT,
    treatment TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (screen_id, stream, seq)
);

-- Reports go by time; a warning's evidence by its identifier.
CREATE INDEX proof_by_time ON proof (start_at);
CREATE INDEX proof_by_warning ON proof (identifier) WHERE kind = 'warning';
