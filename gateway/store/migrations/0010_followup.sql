-- Issue 12 item 8: personal details for the follow-up of a fever resolved as referred, monitored or turned_back
-- (gateway/followup.py): one row per alert, apart from scans and alert events (which coordinators, exports and
-- notifications see), shown to the medics of the alert's site only, deleted [web] followup_days after
-- recorded_at by `checkpoint-gateway retention`.
CREATE TABLE followups (
    alert_id TEXT PRIMARY KEY REFERENCES alerts (alert_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    plate TEXT NOT NULL,
    note TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX followups_recorded_at ON followups (recorded_at);

-- Issue 12 item 2: the audit log of what alert events do not hold (gateway/audit.py): logins ok and refused,
-- logouts, account and site changes, and who looked at follow-up details (never a password, never the details).
CREATE TABLE audit (
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    address TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
