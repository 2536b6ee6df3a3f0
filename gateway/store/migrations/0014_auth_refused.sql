-- Issue 11 audit: downlink commands a node refused for their signature or counter (firmware/downlink.py), as
-- its status reports them since its boot, and the last reason. A rise raises a forged_command alert.
ALTER TABLE nodes ADD COLUMN auth_refused BIGINT;
ALTER TABLE nodes ADD COLUMN auth_error TEXT;
