-- Where the broker relay (issue 15) has published up to: the pull cursor after the last event
-- the broker acknowledged, stored as the store's read hands it over (opaque text), so a relay
-- that crashed resumes there. One row; absent until the relay first publishes.
CREATE TABLE relay_checkpoint (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  cursor TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
