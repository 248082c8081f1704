-- Event ids are unique per tenant, not across tenants: a reused id of another tenant must not
-- be refused (that would confirm it exists there). SQLite cannot drop a column constraint, so
-- the table is rebuilt with the same rows and positions (AUTOINCREMENT continues after the
-- highest copied position); DROP TABLE does not fire the append-only DELETE trigger.
CREATE TABLE events_new (
  global_position INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id        TEXT    NOT NULL,
  tenant_id       TEXT    NOT NULL,
  aggregate_id    TEXT    NOT NULL,
  aggregate_type  TEXT    NOT NULL,
  event_type      TEXT    NOT NULL,
  schema_version  INTEGER NOT NULL,
  event_data      TEXT    NOT NULL,
  metadata        TEXT    NOT NULL,
  version         INTEGER NOT NULL CHECK (version > 0),
  created_at      TEXT    NOT NULL,
  hash            TEXT    NOT NULL,
  CONSTRAINT uq_tenant_event UNIQUE (tenant_id, event_id),
  CONSTRAINT uq_aggregate_version UNIQUE (tenant_id, aggregate_id, version)
);
INSERT INTO events_new (global_position, event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
  SELECT global_position, event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash
  FROM events ORDER BY global_position;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX idx_events_tenant_position ON events (tenant_id, global_position);
CREATE INDEX idx_events_type_time ON events (event_type, created_at);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END;
