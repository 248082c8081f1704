-- Per-device settings (one row per key). The device id is created once and never changes.
CREATE TABLE device_settings (
  key         TEXT PRIMARY KEY,
  value       TEXT NOT NULL,
  updated_at  TEXT NOT NULL
) WITHOUT ROWID;

-- The last audit-chain verification of each order's synced events.
CREATE TABLE audit_checks (
  order_id               TEXT PRIMARY KEY,
  verified               INTEGER NOT NULL,
  checked_at             TEXT NOT NULL,
  first_broken_event_id  TEXT
) WITHOUT ROWID;
