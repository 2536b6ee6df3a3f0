-- Issue 11 item 5 and the downlink counter.
-- quarantine_sources: every refused message counted per source (gateway/quarantine.py: `site/node`, or the
-- topic's root), whether its quarantine row was kept or dropped by the rate limit. At most 1,000 named sources
-- and the overflow source '*' (1,001 rows). identity_row: the source's one unknown_identity row is stored.
CREATE TABLE quarantine_sources (
    source TEXT PRIMARY KEY,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    last_reason TEXT NOT NULL,
    kept BIGINT NOT NULL,
    dropped BIGINT NOT NULL,
    identity_row INTEGER NOT NULL
);
-- downlink_counters: the highest counter a gateway instance (by name) may have put on a signed message to a
-- node (gateway/signing.py), written ahead, so its counter never goes back, across restarts and clock steps.
CREATE TABLE downlink_counters (
    name TEXT PRIMARY KEY,
    ceiling BIGINT NOT NULL
);
