-- Issue 13, the notification outbox (gateway/notify/outbox.py). A notification is written in the transaction
-- of the alert event it tells (or by the notifier for a reminder), with a stable id: alert_id#n, alert_id#rK.
-- The notifier fans it out to one delivery per receiver (routed_at set) and records every attempt.
CREATE TABLE notifications (
    notification_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    reminder INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    routed_at BIGINT
);
CREATE INDEX notifications_unrouted ON notifications (routed_at, created_at);

CREATE TABLE deliveries (
    notification_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    done_at BIGINT,
    PRIMARY KEY (notification_id, receiver)
);
CREATE INDEX deliveries_pending ON deliveries (state, receiver, created_at);

CREATE TABLE delivery_attempts (
    notification_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at BIGINT NOT NULL,
    result TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (notification_id, receiver, attempt)
);
CREATE INDEX delivery_attempts_at ON delivery_attempts (at);
