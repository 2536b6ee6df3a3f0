-- Protocol v1 storage. Portable SQL (SQLite and PostgreSQL): natural keys, no autoincrement, Unix ms times.

CREATE TABLE scans (
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
    PRIMARY KEY (site, node, seq)
);
CREATE INDEX scans_scanned_at ON scans (scanned_at);

CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    seq BIGINT,
    last_seq BIGINT,
    t_site_c DOUBLE PRECISION,
    t_core_c DOUBLE PRECISION,
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_at BIGINT,
    confirmed_at BIGINT,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    events INTEGER NOT NULL
);
CREATE INDEX alerts_node ON alerts (site, node, kind);
CREATE INDEX alerts_opened_at ON alerts (opened_at);

CREATE TABLE alert_events (
    alert_id TEXT NOT NULL REFERENCES alerts (alert_id),
    n INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    seq BIGINT,
    t_core_c DOUBLE PRECISION,
    published_at BIGINT,
    PRIMARY KEY (alert_id, n)
);
CREATE INDEX alert_events_unpublished ON alert_events (published_at);

CREATE TABLE nodes (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT NOT NULL,
    state_since BIGINT,
    last_seen BIGINT,
    fw TEXT,
    boot BIGINT,
    config_id TEXT,
    uptime_ms BIGINT,
    heap_free BIGINT,
    rssi INTEGER,
    outbox_depth BIGINT,
    outbox_drops BIGINT,
    sensor_errors BIGINT,
    supply_v DOUBLE PRECISION,
    health_at BIGINT,
    last_seq BIGINT,
    scans BIGINT NOT NULL,
    PRIMARY KEY (site, node)
);

CREATE TABLE quarantine (
    received_at BIGINT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    size INTEGER NOT NULL,
    payload BYTEA NOT NULL,
    site TEXT,
    node TEXT
);
CREATE INDEX quarantine_received_at ON quarantine (received_at);
