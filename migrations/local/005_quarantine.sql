-- Server events this device could not read when it pulled them (a newer schema version of a
-- known type, data that breaks the event contract), kept raw so nothing is lost, with the
-- reason shown on the sync screen. Later events of the same stream wait here too ('blocked'):
-- the local log is gap-free per stream. Rows leave this table only when their event has been
-- written into the log (re-tried at every sync, e.g. after an app update).
CREATE TABLE quarantined_events (
  event_id         TEXT    PRIMARY KEY,
  global_position  INTEGER NOT NULL,
  stream_id        TEXT    NOT NULL,
  stream_type      TEXT    NOT NULL,
  stream_version   INTEGER NOT NULL,
  event_type       TEXT    NOT NULL,
  schema_version   INTEGER NOT NULL,
  -- The ServerEvent as received (JSON).
  raw              TEXT    NOT NULL,
  kind             TEXT    NOT NULL CHECK (kind IN ('newer-version', 'invalid', 'blocked')),
  reason           TEXT    NOT NULL,
  quarantined_at   TEXT    NOT NULL,
  UNIQUE (stream_id, stream_version)
) WITHOUT ROWID;
