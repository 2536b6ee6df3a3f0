-- Issue 10 kind 1, two units with one boot and uptime: a scan carries its unit (a random number the unit
-- drew at the first boot of its flash, record layout 4), kept here, 0 for a scan from firmware before it.
-- A scan is a resend of a stored one only when its boot, uptime_ms and unit are all the stored ones, so the
-- clashes table is keyed by the unit too. SQLite cannot change a key in place: the table is made again.
ALTER TABLE scans ADD COLUMN unit BIGINT NOT NULL DEFAULT 0;
CREATE TABLE scan_clashes_unit (
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
    code INTEGER,
    retest_code INTEGER,
    wait_s INTEGER,
    ref_gain DOUBLE PRECISION,
    ref_offset_c DOUBLE PRECISION,
    unit BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site, node, seq, boot, uptime_ms, unit)
);
INSERT INTO scan_clashes_unit (site, node, seq, boot, ts, uptime_ms, mode, t_site_c, t_amb_c, t_core_c, verdict,
    flags, samples, duration_ms, retest_of, fw, cal, gateway_t_core_c, gateway_verdict, gateway_flags, gateway_cal,
    received_at, scanned_at, clock_skew_ms, code, retest_code, wait_s, ref_gain, ref_offset_c)
SELECT site, node, seq, boot, ts, uptime_ms, mode, t_site_c, t_amb_c, t_core_c, verdict,
    flags, samples, duration_ms, retest_of, fw, cal, gateway_t_core_c, gateway_verdict, gateway_flags, gateway_cal,
    received_at, scanned_at, clock_skew_ms, code, retest_code, wait_s, ref_gain, ref_offset_c
FROM scan_clashes;
DROP TABLE scan_clashes;
ALTER TABLE scan_clashes_unit RENAME TO scan_clashes;
CREATE INDEX scan_clashes_scanned_at ON scan_clashes (scanned_at);
-- Sessions the broker ended under the node while its link was up, as its status reports them since its boot.
ALTER TABLE nodes ADD COLUMN taken_over BIGINT;
