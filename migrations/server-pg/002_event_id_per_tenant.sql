-- Event ids are unique per tenant, not across tenants: a reused id of another tenant must not
-- be refused (that would confirm it exists there). Idempotency lookups go by (tenant, id).
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (tenant_id, event_id);
