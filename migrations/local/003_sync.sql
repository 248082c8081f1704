-- Offline-first sync: the outbox of local commands, their immutable pending events, the server
-- coordinates of confirmed events, and the pull checkpoint.

-- One row per local command. Mutable: status and attempt move as the command is pushed,
-- rebased, rejected, dismissed or retried. Creation order is the rowid (seq).
CREATE TABLE commands (
  seq           INTEGER PRIMARY KEY,
  command_id    TEXT    NOT NULL UNIQUE,
  order_id      TEXT    NOT NULL,
  command       TEXT    NOT NULL,
  status        TEXT    NOT NULL CHECK (status IN ('pending', 'synced', 'rejected', 'dismissed', 'retried')),
  attempt       INTEGER NOT NULL CHECK (attempt >= 1),
  -- Confirmed stream version the current attempt was decided on.
  base_version  INTEGER NOT NULL CHECK (base_version >= 0),
  rejection     TEXT,
  caused_by     TEXT,
  -- The command this one re-submits (conflict inbox "retry as new").
  retry_of      TEXT,
  user_id       TEXT    NOT NULL,
  device_id     TEXT    NOT NULL,
  created_at    TEXT    NOT NULL,
  updated_at    TEXT    NOT NULL
);

CREATE INDEX commands_by_order ON commands (order_id, status, seq);
CREATE INDEX commands_by_status ON commands (status, seq);

-- The events each attempt of a command produced. Never changed: a rebase writes a new attempt
-- and the superseded one stays as the audit of what the device first did.
CREATE TABLE pending_events (
  event_id        TEXT    PRIMARY KEY,
  command_id      TEXT    NOT NULL REFERENCES commands (command_id),
  attempt         INTEGER NOT NULL,
  order_id        TEXT    NOT NULL,
  seq             INTEGER NOT NULL,
  event_type      TEXT    NOT NULL,
  schema_version  INTEGER NOT NULL,
  data            TEXT    NOT NULL,
  metadata        TEXT    NOT NULL,
  created_at      TEXT    NOT NULL,
  UNIQUE (command_id, attempt, seq)
) WITHOUT ROWID;

CREATE INDEX pending_events_by_order ON pending_events (order_id);

CREATE TRIGGER pending_events_are_immutable BEFORE UPDATE ON pending_events
BEGIN
  SELECT RAISE(ABORT, 'pending events are immutable: a rebase writes a new attempt instead');
END;

CREATE TRIGGER pending_events_are_permanent BEFORE DELETE ON pending_events
BEGIN
  SELECT RAISE(ABORT, 'pending events are immutable: superseded attempts stay for the audit trail');
END;

-- Server coordinates of confirmed events (timeline and audit display). The hash arrives with
-- the pull, so it is NULL for an own event between its acknowledgement and the next pull.
CREATE TABLE sync_event_positions (
  event_id         TEXT    PRIMARY KEY,
  global_position  INTEGER NOT NULL,
  hash             TEXT,
  server_recorded_at TEXT
) WITHOUT ROWID;

CREATE TABLE sync_state (
  key    TEXT PRIMARY KEY,
  value  TEXT NOT NULL
) WITHOUT ROWID;
