-- What a finished melody turned out to be, so history lines need not re-read its MIDI.
ALTER TABLE generations ADD COLUMN melody_key TEXT;
ALTER TABLE generations ADD COLUMN steps INTEGER CHECK (steps IS NULL OR steps >= 0);
