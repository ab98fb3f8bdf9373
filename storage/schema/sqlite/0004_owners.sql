-- Which running bot process is making a melody, where its reply goes, and when the platform took
-- the reply: so that the next process on the platform can finish and send a melody that a killed
-- one left behind, whether it died composing it or sending it.
ALTER TABLE generations ADD COLUMN owner TEXT;
ALTER TABLE generations ADD COLUMN reply_address TEXT;
ALTER TABLE generations ADD COLUMN delivered_at REAL;
CREATE INDEX generations_unsent ON generations (platform)
    WHERE owner IS NOT NULL AND delivered_at IS NULL AND status <> 'failed';

-- The platform's own id of the message that asked (e.g. 'telegram:update:123'): a message seen
-- twice (replayed from the inbox after a crash) never makes two melodies.
ALTER TABLE generations ADD COLUMN source TEXT;
CREATE UNIQUE INDEX generations_by_source ON generations (source) WHERE source IS NOT NULL;

-- Updates a platform handed over that the bot has not finished with. Telegram forgets an update
-- once the next ones are asked for; a process killed before it recorded what the update asked
-- would lose it, so each is written here first and replayed by the next process.
CREATE TABLE inbox (
    platform    TEXT NOT NULL,
    update_id   INTEGER NOT NULL,
    payload     TEXT NOT NULL CHECK (json_valid(payload)),
    received_at REAL NOT NULL,
    PRIMARY KEY (platform, update_id)
);
