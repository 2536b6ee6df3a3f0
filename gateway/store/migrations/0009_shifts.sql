-- Issue 12 item 7: a site's shifts, e.g. 08-16,16-24,00-08 (gateway/shifts.py), empty for the default three.
ALTER TABLE sites ADD COLUMN shifts TEXT NOT NULL DEFAULT '';
