-- Central event store (PostgreSQL backend). Objects are created in the connection's
-- search_path schema, so a server (or a test) can live in its own schema.
CREATE TABLE events (
  event_id        UUID         PRIMARY KEY,
  tenant_id       VARCHAR(100) NOT NULL,
  aggregate_id    VARCHAR(100) NOT NULL,
  aggregate_type  VARCHAR(50)  NOT NULL,
  event_type      VARCHAR(100) NOT NULL,
  schema_version  INTEGER      NOT NULL,
  event_data      JSONB        NOT NULL,
  metadata        JSONB        NOT NULL,
  version         INTEGER      NOT NULL CHECK (version > 0),
  created_at      TIMESTAMPTZ  NOT NULL,
  global_position BIGINT       GENERATED ALWAYS AS IDENTITY UNIQUE,
  -- Writer's transaction id: pulls only return rows whose transaction is older than every
  -- transaction still running, so a lower position committing later is never skipped.
  txid            XID8         NOT NULL DEFAULT pg_current_xact_id(),
  hash            CHAR(64)     NOT NULL,
  CONSTRAINT uq_aggregate_version UNIQUE (tenant_id, aggregate_id, version)
);
CREATE INDEX idx_events_tenant_position ON events (tenant_id, global_position);
CREATE INDEX idx_events_type_time ON events (event_type, created_at);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- One row per stream: its head, locked (FOR UPDATE via upsert) by every append to the stream.
CREATE TABLE streams (
  tenant_id      VARCHAR(100) NOT NULL,
  aggregate_id   VARCHAR(100) NOT NULL,
  aggregate_type VARCHAR(50)  NOT NULL,
  version        INTEGER      NOT NULL,
  last_hash      CHAR(64)     NOT NULL,
  PRIMARY KEY (tenant_id, aggregate_id)
);

-- Order read model, folded inside the append transaction by the domain reducers.
CREATE TABLE order_projections (
  tenant_id     VARCHAR(100) NOT NULL,
  order_id      VARCHAR(100) NOT NULL,
  customer_id   VARCHAR(100),
  status        VARCHAR(50),
  total         BIGINT       NOT NULL,
  currency      VARCHAR(10),
  item_count    INTEGER      NOT NULL,
  version       INTEGER      NOT NULL,
  last_event_id UUID         NOT NULL,
  last_position BIGINT       NOT NULL,
  created_at    TIMESTAMPTZ,
  updated_at    TIMESTAMPTZ,
  state         JSONB        NOT NULL,
  PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX idx_order_projections_status ON order_projections (tenant_id, status, updated_at);
CREATE INDEX idx_order_projections_updated ON order_projections (tenant_id, updated_at);
CREATE INDEX idx_order_projections_position ON order_projections (tenant_id, last_position);
