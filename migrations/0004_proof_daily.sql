-- Proof of play rolled up by local day (estation-central rollup): raw
-- records (0002) that ended before the cut are summed here, one row per
-- screen, day and thing shown, and deleted from `proof`. Reports read both;
-- a raw record is in one or the other, never both. Empty strings, not NULL,
-- for what a kind has not (they are in the key). Times are ms since 1970;
-- treatment is the loudest: 1 ticker, 2 banner, 3 takeover (0: not a warning).
CREATE TABLE proof_daily (
    screen_id TEXT NOT NULL REFERENCES screens (id),
    day_start BIGINT NOT NULL,
    day_end BIGINT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    playlist TEXT NOT NULL,
    item TEXT NOT NULL,
    identifier TEXT NOT NULL,
    sender TEXT NOT NULL,
    sent TEXT NOT NULL,
    treatment INTEGER NOT NULL,
    plays BIGINT NOT NULL,
    ms BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (screen_id, day_start, kind, playlist, item, identifier, sender, sent)
);

CREATE INDEX proof_daily_by_day ON proof_daily (day_start);

-- The highest number rolled up of each screen's stream: a record sent
-- again after its day was rolled up (an acknowledgement lost, the kiosk
-- offline since) is not stored a second time.
CREATE TABLE proof_rolled (
    screen_id TEXT NOT NULL REFERENCES screens (id),
    stream TEXT NOT NULL,
    through_seq BIGINT NOT NULL,
    PRIMARY KEY (screen_id, stream)
);
