-- What a finished melody turned out to be, so history lines need not re-parse the MIDI.
ALTER TABLE generations ADD COLUMN melody_key TEXT;
ALTER TABLE generations ADD COLUMN steps INTEGER;
