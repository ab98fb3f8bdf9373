-- Which process is making a melody, where its reply goes and when the platform took it; the
-- platform's id of the asking message; and the inbox of updates not yet finished with.
ALTER TABLE generations ADD COLUMN owner TEXT;
ALTER TABLE generations ADD COLUMN reply_address TEXT;
ALTER TABLE generations ADD COLUMN delivered_at DOUBLE PRECISION;
CREATE INDEX generations_unsent ON generations (platform)
    WHERE owner IS NOT NULL AND delivered_at IS NULL AND status <> 'failed';

ALTER TABLE generations ADD COLUMN source TEXT;
CREATE UNIQUE INDEX generations_by_source ON generations (source) WHERE source IS NOT NULL;

CREATE TABLE inbox (
    platform    TEXT NOT NULL,
    update_id   BIGINT NOT NULL,
    payload     TEXT NOT NULL CHECK (payload::jsonb IS NOT NULL),
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, update_id)
);
