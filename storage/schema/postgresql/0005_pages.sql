-- A page on the web for every melody at an address nobody can guess, a gallery page for a chat
-- that asks for one, and "gone" (not "not found") for the page of a deleted melody.
ALTER TABLE generations ADD COLUMN page_id TEXT;
UPDATE generations SET page_id = substr(md5(random()::text || id::text), 1, 24);
CREATE UNIQUE INDEX generations_by_page ON generations (page_id) WHERE page_id IS NOT NULL;

CREATE TABLE removed_pages (
    page_id    TEXT PRIMARY KEY,
    removed_at DOUBLE PRECISION NOT NULL
);
CREATE FUNCTION generations_page_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.page_id IS NOT NULL THEN
        INSERT INTO removed_pages (page_id, removed_at)
        VALUES (OLD.page_id, extract(epoch FROM clock_timestamp()))
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER generations_page_removed AFTER DELETE ON generations
    FOR EACH ROW EXECUTE FUNCTION generations_page_removed();

CREATE TABLE galleries (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    page_id    TEXT NOT NULL UNIQUE,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    show_names INTEGER NOT NULL CHECK (show_names IN (0, 1)),
    changed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, chat_id)
);
