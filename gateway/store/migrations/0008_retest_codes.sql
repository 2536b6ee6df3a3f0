-- Issue 14, retest codes: the case's three-digit code shown to staff, the code a retest names (entered on any
-- node of the site, or the node's oldest pending case) and the wait before a retest (s). Null for scans from
-- nodes without them (record layout 1).
ALTER TABLE scans ADD COLUMN code INTEGER;
ALTER TABLE scans ADD COLUMN retest_code INTEGER;
ALTER TABLE scans ADD COLUMN wait_s INTEGER;
ALTER TABLE scan_clashes ADD COLUMN code INTEGER;
ALTER TABLE scan_clashes ADD COLUMN retest_code INTEGER;
ALTER TABLE scan_clashes ADD COLUMN wait_s INTEGER;
CREATE INDEX scans_code ON scans (site, code);
