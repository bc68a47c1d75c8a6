-- Classification of tickets (issue #4). Keep in step with ../sqlite/0002_classification.sql.
-- priority is derived at classification (urgent > high > normal > low) and may be set by agents.
ALTER TABLE tickets ADD COLUMN category TEXT NOT NULL DEFAULT 'inquiry';
ALTER TABLE tickets ADD COLUMN severity TEXT;
ALTER TABLE tickets ADD COLUMN urgent   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN vip      BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';

-- What agents corrected, so the rules can be tuned: one row per changed field.
CREATE TABLE classification_corrections (
    id           BIGSERIAL PRIMARY KEY,
    ticket_id    BIGINT NOT NULL REFERENCES tickets (id),
    field        TEXT    NOT NULL,
    old_value    TEXT,
    new_value    TEXT    NOT NULL,
    corrected_by TEXT    NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX classification_corrections_ticket ON classification_corrections (ticket_id);
