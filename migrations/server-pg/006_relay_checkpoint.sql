-- Where the broker relay (issue 15) has published up to: the pull cursor after the last event
-- the broker acknowledged, stored as the store's read hands it over (opaque text), so a relay
-- that crashed resumes there. One row; absent until the relay first publishes.
CREATE TABLE relay_checkpoint (
  id integer PRIMARY KEY CHECK (id = 1),
  cursor text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
