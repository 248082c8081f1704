-- Issue 14's order model in the worker's read model, as in the server's (server-pg order_facets):
-- the customer's display name and the two facets, filterable and counted beside the status word.
ALTER TABLE order_projections ADD COLUMN customer_name VARCHAR(200);
ALTER TABLE order_projections ADD COLUMN payment_status VARCHAR(50);
ALTER TABLE order_projections ADD COLUMN fulfilment_status VARCHAR(50);
CREATE INDEX idx_order_projections_payment ON order_projections (tenant_id, payment_status, updated_at);
CREATE INDEX idx_order_projections_fulfilment ON order_projections (tenant_id, fulfilment_status, updated_at);
