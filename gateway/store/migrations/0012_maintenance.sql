-- Issue 12 item 5: planned maintenance windows. A node (or every node of a site: node = '*') that goes
-- offline inside one raises no offline alert, and one still offline when it ends raises it then.
CREATE TABLE maintenance (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    note TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (site, node, starts_at)
);
CREATE INDEX maintenance_ends ON maintenance (ends_at);
