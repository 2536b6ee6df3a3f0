-- Issue 15 item 3: per-unit reference calibration. Each two-point check of a node against a reference source
-- (the two reference temperatures and the node readings of them, the gain and offset that follow, who did it
-- and when) is kept as the node history, and each scan carries the correction the node applied to its
-- site reading (null for nodes without one, and for scans from before).
CREATE TABLE reference_checks (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    ref_lo_c DOUBLE PRECISION NOT NULL,
    read_lo_c DOUBLE PRECISION NOT NULL,
    ref_hi_c DOUBLE PRECISION NOT NULL,
    read_hi_c DOUBLE PRECISION NOT NULL,
    gain DOUBLE PRECISION NOT NULL,
    offset_c DOUBLE PRECISION NOT NULL,
    config_id TEXT NOT NULL,
    checked_by TEXT NOT NULL,
    PRIMARY KEY (site, node, checked_at)
);
ALTER TABLE scans ADD COLUMN ref_gain DOUBLE PRECISION;
ALTER TABLE scans ADD COLUMN ref_offset_c DOUBLE PRECISION;
ALTER TABLE scan_clashes ADD COLUMN ref_gain DOUBLE PRECISION;
ALTER TABLE scan_clashes ADD COLUMN ref_offset_c DOUBLE PRECISION;
