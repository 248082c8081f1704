-- When the server refused a command, kept apart from updated_at (which dismiss and retry move),
-- so the conflict inbox shows the rejection's own time. Earlier rejections: updated_at is the
-- best record left (exact unless the command was dismissed or retried since).
ALTER TABLE commands ADD COLUMN rejected_at TEXT;
UPDATE commands SET rejected_at = updated_at WHERE rejection IS NOT NULL;
