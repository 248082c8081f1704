-- Issue 16: the events table, declaratively partitioned by global_position range.
-- Position ranges (not time) keep the gap-safe pull and the per-stream order simple: a pull or a
-- replay walks positions, and a partition, once the sequence has passed its upper bound, never
-- receives another row (so it can be archived whole).
--
-- The plain table is not copied: it becomes the first partition as it is (ATTACH), so the
-- migration keeps every row and every hash byte for byte, and only the key table below is filled.
-- It runs in one transaction: a crash at any point leaves the plain table untouched and the
-- next `migrate` starts over. Columns are never listed (LIKE, ATTACH), so a later migration adding
-- a column to events works on either shape.

-- A partitioned table's unique index must include the partition key, so the two uniqueness
-- rules of events live in this plain table, filled by a statement trigger on every insert into
-- events (whoever the writer), so a violation fails that insert:
-- event ids are unique per tenant (migration 002) and a stream has one event per version.
-- It is never archived: idempotency and uniqueness hold across archival and restore.
CREATE TABLE event_keys (
  tenant_id       VARCHAR(100) NOT NULL,
  event_id        UUID         NOT NULL,
  aggregate_id    VARCHAR(100) NOT NULL,
  version         INTEGER      NOT NULL,
  global_position BIGINT       NOT NULL,
  PRIMARY KEY (tenant_id, event_id),
  CONSTRAINT uq_event_keys_stream_version UNIQUE (tenant_id, aggregate_id, version)
);
INSERT INTO event_keys (tenant_id, event_id, aggregate_id, version, global_position)
  SELECT tenant_id, event_id, aggregate_id, version, global_position FROM events;

-- The plain table loses its identity (the partitioned parent draws positions now) and its
-- triggers (the parent's are cloned onto every partition on ATTACH).
ALTER TABLE events RENAME TO events_legacy;
DROP TRIGGER events_no_update_delete ON events_legacy;
DROP TRIGGER events_no_truncate ON events_legacy;
ALTER TABLE events_legacy ALTER COLUMN global_position DROP IDENTITY;

CREATE TABLE events (LIKE events_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (global_position);
ALTER TABLE events ALTER COLUMN global_position ADD GENERATED ALWAYS AS IDENTITY;
ALTER TABLE events ADD CONSTRAINT events_position_key UNIQUE (global_position);
CREATE INDEX events_tenant_position ON events (tenant_id, global_position);
CREATE INDEX events_type_time ON events (event_type, created_at);
CREATE INDEX events_stream_version ON events (tenant_id, aggregate_id, version);
CREATE INDEX events_tenant_event ON events (tenant_id, event_id);
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
-- One INSERT per statement (a transition table), not one per row. SECURITY DEFINER: the
-- writer needs no right on event_keys.
CREATE FUNCTION events_keep_keys() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  INSERT INTO event_keys (tenant_id, event_id, aggregate_id, version, global_position)
    SELECT tenant_id, event_id, aggregate_id, version, global_position FROM new_events;
  RETURN NULL;
END
$$;
ALTER FUNCTION events_keep_keys() SET search_path FROM CURRENT;
CREATE TRIGGER events_unique_keys AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION events_keep_keys();

-- Partition size and how many empty partitions are kept ahead of the head.
CREATE TABLE event_partitioning (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  partition_size BIGINT  NOT NULL CHECK (partition_size > 0),
  ahead          INTEGER NOT NULL CHECK (ahead > 0)
);
INSERT INTO event_partitioning (id, partition_size, ahead) VALUES (1, 1000000, 2);

-- Every range partition, live or archived: [lo, hi). Archived ones name their file (reads that
-- need them fail naming it) and keep what verify-chain and pulls need to know about them.
CREATE TABLE event_partitions (
  name          TEXT   PRIMARY KEY,
  lo            BIGINT NOT NULL,
  hi            BIGINT NOT NULL CHECK (hi > lo),
  state         TEXT   NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'archived')),
  archive_file  TEXT,
  archive_sha256 TEXT,
  archived_at   TIMESTAMPTZ,
  UNIQUE (lo)
);
-- Per archived partition and stream: the last archived link, where verify-chain resumes.
CREATE TABLE event_archive_anchors (
  partition_name TEXT         NOT NULL REFERENCES event_partitions (name),
  tenant_id      VARCHAR(100) NOT NULL,
  aggregate_id   VARCHAR(100) NOT NULL,
  first_version  INTEGER      NOT NULL,
  version        INTEGER      NOT NULL,
  hash           CHAR(64)     NOT NULL,
  PRIMARY KEY (tenant_id, aggregate_id, partition_name)
);
-- Per archived partition and tenant: its position range there, so a pull that would step over
-- archived events of its tenant fails instead of silently skipping them.
CREATE TABLE event_archive_tenants (
  partition_name TEXT         NOT NULL REFERENCES event_partitions (name),
  tenant_id      VARCHAR(100) NOT NULL,
  first_position BIGINT       NOT NULL,
  last_position  BIGINT       NOT NULL,
  events         BIGINT       NOT NULL,
  PRIMARY KEY (tenant_id, partition_name)
);

-- Create range partitions until `ahead` empty ones lie past the head, and move any row that
-- fell into the default partition (the safety net that keeps an append from ever failing) into
-- its range partition. SECURITY DEFINER: the app role may call it (the server does at start and
-- when the head nears the last partition) without any DDL right of its own.
CREATE FUNCTION ensure_event_partitions() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  cfg       event_partitioning%ROWTYPE;
  head      BIGINT;
  top       BIGINT;
  overflow  BIGINT;
  created   INTEGER := 0;
  part      TEXT;
  s         TEXT := quote_ident(current_schema());
BEGIN
  -- One maintainer at a time per schema.
  PERFORM pg_advisory_xact_lock(1330380804, hashtext(current_schema()));
  SELECT * INTO cfg FROM event_partitioning WHERE id = 1;
  SELECT coalesce(max(global_position), 0) INTO overflow FROM events_default;
  IF overflow > 0 THEN
    LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('ALTER TABLE %s.events DETACH PARTITION %s.events_default', s, s);
    EXECUTE format('ALTER TABLE %s.events_default RENAME TO events_overflow', s);
  END IF;
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s', pg_get_serial_sequence(s || '.events', 'global_position')) INTO head;
  head := greatest(head, overflow);
  SELECT coalesce(max(hi), 1) INTO top FROM event_partitions;
  WHILE top <= head + cfg.ahead * cfg.partition_size LOOP
    part := 'events_p' || top;
    -- Align on partition_size after the first one (the legacy partition ends anywhere).
    EXECUTE format('CREATE TABLE %s.%I PARTITION OF %s.events FOR VALUES FROM (%s) TO (%s)', s, part, s, top,
      ((top - 1) / cfg.partition_size + 1) * cfg.partition_size + 1);
    INSERT INTO event_partitions (name, lo, hi) VALUES (part, top, ((top - 1) / cfg.partition_size + 1) * cfg.partition_size + 1);
    top := ((top - 1) / cfg.partition_size + 1) * cfg.partition_size + 1;
    created := created + 1;
  END LOOP;
  IF overflow > 0 THEN
    -- The insert below records their keys again.
    EXECUTE format('DELETE FROM %s.event_keys k USING %s.events_overflow o WHERE k.tenant_id = o.tenant_id AND k.event_id = o.event_id', s, s);
    EXECUTE format('INSERT INTO %s.events OVERRIDING SYSTEM VALUE SELECT * FROM %s.events_overflow', s, s);
    EXECUTE format('DROP TABLE %s.events_overflow', s);
    EXECUTE format('CREATE TABLE %s.events_default PARTITION OF %s.events DEFAULT', s, s);
  END IF;
  RETURN created;
END
$$;
-- Pinned to this schema (a SECURITY DEFINER function must not follow the caller's search_path).
ALTER FUNCTION ensure_event_partitions() SET search_path FROM CURRENT;
REVOKE EXECUTE ON FUNCTION ensure_event_partitions() FROM PUBLIC;

DO $$
DECLARE
  last_pos BIGINT;
BEGIN
  SELECT max(global_position) INTO last_pos FROM events_legacy;
  IF last_pos IS NULL THEN
    DROP TABLE events_legacy;
  ELSE
    -- The check lets ATTACH skip its own validation scan... after this one.
    EXECUTE format('ALTER TABLE events_legacy ADD CONSTRAINT events_legacy_range CHECK (global_position >= 1 AND global_position < %s)', last_pos + 1);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION events_legacy FOR VALUES FROM (1) TO (%s)', last_pos + 1);
    INSERT INTO event_partitions (name, lo, hi) VALUES ('events_legacy', 1, last_pos + 1);
    PERFORM setval(pg_get_serial_sequence('events', 'global_position'), last_pos);
  END IF;
END
$$;
CREATE TABLE events_default PARTITION OF events DEFAULT;
SELECT ensure_event_partitions();
