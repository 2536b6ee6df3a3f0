-- The retest-code index holds only the scans that carry a code (indeterminate and elevated ones): the lookup
-- asks for one code, which only such scans match, and a normal scan no longer pays an index entry
-- (docs/benchmarks.md, the ingest bench).
DROP INDEX scans_code;
CREATE INDEX scans_code ON scans (site, code) WHERE code IS NOT NULL;
