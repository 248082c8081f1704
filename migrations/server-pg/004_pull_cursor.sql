-- Pull cursor (issue 17): appends no longer take turns, so pulls go by (writer's transaction id,
-- position) instead of by position alone. The txid column has been there since migration 001;
-- this index serves the cursor pull (tenant, then settled rows in (txid, position) order).
CREATE INDEX idx_events_tenant_txid_position ON events (tenant_id, txid, global_position);
