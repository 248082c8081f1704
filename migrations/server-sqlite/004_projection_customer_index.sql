-- Scoped sync (issue 16) finds the orders of a device's customers through the read model.
CREATE INDEX idx_order_projections_customer ON order_projections (tenant_id, customer_id);
