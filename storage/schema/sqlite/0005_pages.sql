-- A page on the web for every melody, at an address nobody can guess (not its number), and a
-- gallery page for a chat that asks for one.
ALTER TABLE generations ADD COLUMN page_id TEXT;
UPDATE generations SET page_id = lower(hex(randomblob(12)));
CREATE UNIQUE INDEX generations_by_page ON generations (page_id) WHERE page_id IS NOT NULL;

-- The page of a deleted melody (forget-me, retention, a deleted user) answers "gone", not "not
-- found", so a link shared before reads as removed on purpose. Only the random page id stays.
CREATE TABLE removed_pages (
    page_id    TEXT PRIMARY KEY,
    removed_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER generations_page_removed AFTER DELETE ON generations
    WHEN OLD.page_id IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO removed_pages (page_id, removed_at)
    VALUES (OLD.page_id, (julianday('now') - 2440587.5) * 86400.0);
END;

-- A chat's gallery of recent melodies, listed only where a moderator switched it on, with the
-- composers' display names only if they chose that too. Switched off, the row stays (and its
-- address answers "gone"), so switching on again gives the same address.
CREATE TABLE galleries (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    page_id    TEXT NOT NULL UNIQUE,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    show_names INTEGER NOT NULL CHECK (show_names IN (0, 1)),
    changed_at REAL NOT NULL,
    PRIMARY KEY (platform, chat_id)
);
