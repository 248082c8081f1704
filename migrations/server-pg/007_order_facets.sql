-- Issue 14's order model in the read model: the customer's display name and the two facets
-- (payment, fulfilment), filterable and counted beside the seeds' status word. Rows built before
-- are filled when the server starts: the fold changed (REDUCER_VERSION), so the read model is
-- rebuilt from the log (read_model_version).
ALTER TABLE order_projections ADD COLUMN customer_name VARCHAR(200);
ALTER TABLE order_projections ADD COLUMN payment_status VARCHAR(50);
ALTER TABLE order_projections ADD COLUMN fulfilment_status VARCHAR(50);
CREATE INDEX idx_order_projections_payment ON order_projections (tenant_id, payment_status, updated_at);
CREATE INDEX idx_order_projections_fulfilment ON order_projections (tenant_id, fulfilment_status, updated_at);
