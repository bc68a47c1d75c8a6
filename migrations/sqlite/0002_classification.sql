-- Classification of tickets (issue #4). Keep in step with ../postgres/0002_classification.sql.
-- priority is derived at classification (urgent > high > normal > low) and may be set by agents.
ALTER TABLE tickets ADD COLUMN category TEXT NOT NULL DEFAULT 'inquiry';
ALTER TABLE tickets ADD COLUMN severity TEXT;
ALTER TABLE tickets ADD COLUMN urgent   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN vip      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';

-- What agents corrected, so the rules can be tuned: one row per changed field.
CREATE TABLE classification_corrections (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    INTEGER NOT NULL REFERENCES tickets (id),
    field        TEXT    NOT NULL,
    old_value    TEXT,
    new_value    TEXT    NOT NULL,
    corrected_by TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX classification_corrections_ticket ON classification_corrections (ticket_id);
