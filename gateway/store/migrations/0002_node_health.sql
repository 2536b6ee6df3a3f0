-- Health and status fields the node sends that the fleet view lacked (firmware/contract.py HEALTH, STATUS):
-- scans the outbox refused to store, supervised task restarts, and why the node refused its last pushed config.
ALTER TABLE nodes ADD COLUMN outbox_errors BIGINT;
ALTER TABLE nodes ADD COLUMN task_restarts BIGINT;
ALTER TABLE nodes ADD COLUMN config_error TEXT;
