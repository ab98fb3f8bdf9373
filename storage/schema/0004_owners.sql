-- Which running bot process is making a melody, where its reply goes, and when the platform took
-- the reply: so that the next process on the platform can finish and send a melody that a killed
-- one left behind, whether it died composing it or sending it.
ALTER TABLE generations ADD COLUMN owner TEXT;
ALTER TABLE generations ADD COLUMN reply_address TEXT;
ALTER TABLE generations ADD COLUMN delivered_at REAL;
CREATE INDEX generations_unsent ON generations (platform)
    WHERE owner IS NOT NULL AND delivered_at IS NULL AND status <> 'failed';
