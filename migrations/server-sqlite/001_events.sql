-- Central event store (embedded SQLite backend). Writes are serialised by SQLite, so the
-- AUTOINCREMENT position is also commit order: a pull can never skip a later-committing event.
CREATE TABLE events (
  global_position INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id        TEXT    NOT NULL UNIQUE,
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
  CONSTRAINT uq_aggregate_version UNIQUE (tenant_id, aggregate_id, version)
);
CREATE INDEX idx_events_tenant_position ON events (tenant_id, global_position);
CREATE INDEX idx_events_type_time ON events (event_type, created_at);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END;

-- One row per stream: its head (version and last hash), locked by every append to the stream.
CREATE TABLE streams (
  tenant_id      TEXT    NOT NULL,
  aggregate_id   TEXT    NOT NULL,
  aggregate_type TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  last_hash      TEXT    NOT NULL,
  PRIMARY KEY (tenant_id, aggregate_id)
);

-- Order read model, folded inside the append transaction by the domain reducers.
CREATE TABLE order_projections (
  tenant_id     TEXT    NOT NULL,
  order_id      TEXT    NOT NULL,
  customer_id   TEXT,
  status        TEXT,
  total         INTEGER NOT NULL,
  currency      TEXT,
  item_count    INTEGER NOT NULL,
  version       INTEGER NOT NULL,
  last_event_id TEXT    NOT NULL,
  last_position INTEGER NOT NULL,
  created_at    TEXT,
  updated_at    TEXT,
  state         TEXT    NOT NULL,
  PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX idx_order_projections_status ON order_projections (tenant_id, status, updated_at);
CREATE INDEX idx_order_projections_updated ON order_projections (tenant_id, updated_at);
CREATE INDEX idx_order_projections_position ON order_projections (tenant_id, last_position);
