-- The worker's read model (issue 15), in its own schema: the same order_projections table as the
-- server's (so the server's dashboard reads can be pointed at it), folded by the same code from
-- the broker's messages instead of inside the append transaction.
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

-- Every event a worker applied, by id: a redelivered or re-published message is recognised and
-- only acknowledged. applied_by names the worker (several share one durable consumer).
CREATE TABLE applied_events (
  tenant_id  VARCHAR(100) NOT NULL,
  event_id   UUID         NOT NULL,
  stream_id  VARCHAR(100) NOT NULL,
  version    INTEGER      NOT NULL,
  position   BIGINT       NOT NULL,
  applied_by VARCHAR(200) NOT NULL,
  applied_at TIMESTAMPTZ  NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, event_id)
);

-- Each stream's last applied version: a message that arrives ahead of its predecessor (another
-- worker holds it, or it is being redelivered) waits, so each stream is applied in order.
CREATE TABLE stream_progress (
  tenant_id VARCHAR(100) NOT NULL,
  stream_id VARCHAR(100) NOT NULL,
  version   INTEGER      NOT NULL,
  PRIMARY KEY (tenant_id, stream_id)
);
