-- What re-sending a melody needs without its model (the steps in its key and the upbeat), and
-- which uses were re-sends: those count towards the cooldown, never towards the daily quota.
ALTER TABLE generations ADD COLUMN tokens TEXT;
ALTER TABLE generations ADD COLUMN pickup INTEGER CHECK (pickup IS NULL OR pickup >= 0);
ALTER TABLE usage ADD COLUMN kind TEXT NOT NULL DEFAULT 'compose'
    CHECK (kind IN ('compose', 'resend'));
