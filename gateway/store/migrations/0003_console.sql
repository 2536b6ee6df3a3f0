-- The web console (issue 12): sites with their time zone, accounts, server-side sessions, failed logins (the
-- rate limit, shared by every web process), and the medic's part of an alert event: the clinical re-check
-- (method, reading), a note, and where the action came from (the audit trail).
CREATE TABLE sites (
    site TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    county TEXT NOT NULL,
    timezone TEXT NOT NULL
);

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    sites TEXT NOT NULL,
    county TEXT NOT NULL,
    locale TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);

CREATE TABLE login_failures (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_at ON login_failures (at);

ALTER TABLE alert_events ADD COLUMN method TEXT;
ALTER TABLE alert_events ADD COLUMN reading_c DOUBLE PRECISION;
ALTER TABLE alert_events ADD COLUMN note TEXT;
ALTER TABLE alert_events ADD COLUMN address TEXT;
CREATE INDEX alert_events_at ON alert_events (at);
