-- The fold version the order read model was built with. A server whose code folds differently
-- (say, seed 004's OrderStatusChanged, which older builds stored and ignored) rebuilds the read
-- model at start and records its own version. Read models built before this migration: v1.
CREATE TABLE read_model_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT INTO read_model_version (id, version) VALUES (1, 1);
