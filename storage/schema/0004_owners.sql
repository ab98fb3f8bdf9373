-- Which running bot process is composing a pending melody, and where its reply goes, so that the
-- next process on the platform can finish a melody that a killed one left behind and send it.
ALTER TABLE generations ADD COLUMN owner TEXT;
ALTER TABLE generations ADD COLUMN reply_address TEXT;
CREATE INDEX generations_pending ON generations (platform) WHERE status = 'pending';
