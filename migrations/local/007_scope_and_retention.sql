-- Scoped sync and bounded history (issue 16).

-- Orders this device opened on demand from outside its scope: it keeps them and pulls their
-- changes from then on (orders it touched, i.e. has commands for, are kept the same way).
CREATE TABLE kept_streams (
  stream_id  TEXT PRIMARY KEY,
  kept_at    TEXT NOT NULL
) WITHOUT ROWID;

-- Closed orders whose local events were dropped after the retention window: their final
-- folded state stays here (the server keeps the events; opening the history fetches them).
-- `version` is the stream version the state was folded to; later events append after it.
CREATE TABLE evicted_streams (
  stream_id        TEXT    PRIMARY KEY,
  stream_type      TEXT    NOT NULL,
  version          INTEGER NOT NULL CHECK (version > 0),
  reducer_version  INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  events_dropped   INTEGER NOT NULL,
  evicted_at       TEXT    NOT NULL
) WITHOUT ROWID;

-- Events stay append-only: the one DELETE allowed is of a stream's events up to the version
-- recorded in evicted_streams (in the same transaction, by the retention job).
DROP TRIGGER events_are_permanent;
CREATE TRIGGER events_are_permanent BEFORE DELETE ON events
WHEN NOT EXISTS (SELECT 1 FROM evicted_streams v WHERE v.stream_id = OLD.stream_id AND v.version >= OLD.stream_version)
BEGIN
  SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed (append a compensating event instead)');
END;
