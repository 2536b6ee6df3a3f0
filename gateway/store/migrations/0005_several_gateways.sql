-- Issue 16, several gateway instances on one database: at most one open alert of a node kind (node_offline,
-- sensor_fault, identity_clash, clock_skew) per node, whichever instance raises it. The loser of a race gets
-- a unique violation, its batch is retried and then finds the open alert. Fever alerts need no index: their
-- id is the scan's key, and only the instance that stored the scan raises one.
CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, site, node) WHERE state <> 'resolved' AND kind <> 'fever';
