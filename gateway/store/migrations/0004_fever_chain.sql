-- Issue 10, nothing silently defeats a fever.
-- A scan whose (site, node, seq) is already stored with another origin (boot, uptime_ms): a spare unit under a
-- replaced node's name, two units sharing one name. It is screened and alerted like any scan and kept here, in
-- a table of its own keyed by its origin too, so the `scans` key (site, node, seq) keeps meaning one scan for
-- receipts, retests, reports and exports, and a resend of the clashing scan is stored once.
CREATE TABLE scan_clashes (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    seq BIGINT NOT NULL,
    boot BIGINT NOT NULL,
    ts BIGINT,
    uptime_ms BIGINT NOT NULL,
    mode TEXT NOT NULL,
    t_site_c DOUBLE PRECISION,
    t_amb_c DOUBLE PRECISION,
    t_core_c DOUBLE PRECISION,
    verdict TEXT NOT NULL,
    flags TEXT NOT NULL,
    samples INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    retest_of BIGINT,
    fw TEXT NOT NULL,
    cal TEXT NOT NULL,
    gateway_t_core_c DOUBLE PRECISION,
    gateway_verdict TEXT NOT NULL,
    gateway_flags TEXT NOT NULL,
    gateway_cal TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    scanned_at BIGINT NOT NULL,
    clock_skew_ms BIGINT,
    PRIMARY KEY (site, node, seq, boot, uptime_ms)
);
CREATE INDEX scan_clashes_scanned_at ON scan_clashes (scanned_at);

-- The node's clock error as the gateway judged it when the scan arrived (ms, + = ahead, null: no ts, or not
-- judged). A scan whose clock is off by more than alerts.clock_skew_s is filed by its received_at.
ALTER TABLE scans ADD COLUMN clock_skew_ms BIGINT;

-- A detail for people (an identity clash names both origins), published on the alerts topic as `detail`.
ALTER TABLE alerts ADD COLUMN detail TEXT;
