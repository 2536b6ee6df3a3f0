-- Issue 16: the last config pushed to each node (push-config), kept so that the gateway can send it again when
-- the node comes online on a broker cluster, whose members keep retained messages each to itself.
CREATE TABLE node_configs (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    config_id TEXT NOT NULL,
    body TEXT NOT NULL,
    pushed_at BIGINT NOT NULL,
    PRIMARY KEY (site, node)
);
