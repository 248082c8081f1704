-- Projection infrastructure. The projection data tables are NOT created here: each projection
-- module creates its own tables, with a name prefix, so a rebuild can fill shadow copies
-- (blue/green) and swap them in by renaming.

-- One row per registered projection: the version its live tables were built by, the last log
-- position applied to them (the checkpoint, written in the same transaction as the rows),
-- and a visible error state when it stopped on an event it could not apply.
CREATE TABLE projection_checkpoints (
  name            TEXT    PRIMARY KEY,
  version         INTEGER NOT NULL,
  position        INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0),
  state           TEXT    NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'failed')),
  error           TEXT,
  -- JSON array of the live table names, so a version that drops a table can clean it up.
  tables          TEXT    NOT NULL DEFAULT '[]',
  updated_at      TEXT    NOT NULL
);

-- Events a projection threw on. The projection stops before the event (it never skips it);
-- `retry` runs it again after a fix, and resolved_at records when it finally went through.
CREATE TABLE projection_dead_letters (
  id              INTEGER PRIMARY KEY,
  projection      TEXT    NOT NULL,
  position        INTEGER NOT NULL,
  event_id        TEXT    NOT NULL,
  event_type      TEXT    NOT NULL,
  error           TEXT    NOT NULL,
  stack           TEXT,
  attempts        INTEGER NOT NULL DEFAULT 1,
  first_failed_at TEXT    NOT NULL,
  last_failed_at  TEXT    NOT NULL,
  resolved_at     TEXT,
  UNIQUE (projection, position)
);

-- A blue/green rebuild in progress: the shadow tables (name prefix) and their own checkpoint,
-- committed with every batch, so a crash leaves the live view intact and the rebuild resumable.
CREATE TABLE projection_rebuilds (
  projection      TEXT    PRIMARY KEY,
  version         INTEGER NOT NULL,
  prefix          TEXT    NOT NULL,
  position        INTEGER NOT NULL DEFAULT 0,
  total           INTEGER NOT NULL,
  started_at      TEXT    NOT NULL,
  updated_at      TEXT    NOT NULL
);
