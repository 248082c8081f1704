-- The device's append-only event log. Position is the rowid: assigned in commit order by the
-- single SQLite writer, and gap-free because rows are never deleted.
CREATE TABLE events (
  position        INTEGER PRIMARY KEY,
  event_id        TEXT    NOT NULL UNIQUE,
  stream_id       TEXT    NOT NULL,
  stream_type     TEXT    NOT NULL,
  stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
  event_type      TEXT    NOT NULL,
  schema_version  INTEGER NOT NULL CHECK (schema_version > 0),
  data            TEXT    NOT NULL,
  metadata        TEXT    NOT NULL,
  recorded_at     TEXT    NOT NULL,
  UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_type ON events (event_type, position);

-- Append-only is a property of the database, not a convention: stored events cannot change.
CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed (append a compensating event instead)');
END;

CREATE TRIGGER events_are_permanent BEFORE DELETE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed (append a compensating event instead)');
END;

-- Snapshots are a cache of folded state: safe to drop, never the source of truth.
CREATE TABLE snapshots (
  stream_id        TEXT    NOT NULL,
  reducer_version  INTEGER NOT NULL,
  stream_version   INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  created_at       TEXT    NOT NULL,
  PRIMARY KEY (stream_id, reducer_version, stream_version)
) WITHOUT ROWID;
