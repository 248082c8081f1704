-- Pull cursor (issue 17): appends no longer take turns, so pulls go by (writer's transaction id,
-- position) instead of by position alone. The txid column has been there since migration 001
-- (kept by the partitioned table). These are partitioned indexes: each partition gets its own,
-- and a restored partition gets them on ATTACH. The first serves a device's cursor pull (tenant,
-- then settled rows in (txid, position) order), the second the broker relay's (every tenant).
CREATE INDEX idx_events_tenant_txid_position ON events (tenant_id, txid, global_position);
CREATE INDEX idx_events_txid_position ON events (txid, global_position);
