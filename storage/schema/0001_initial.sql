-- Users, melodies, limits, bans and the moderators' audit log.
-- Times are Unix seconds (REAL); '' in platform/chat_id columns means "every chat".

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL,
    platform_user_id TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    first_seen       REAL NOT NULL,
    last_seen        REAL NOT NULL,
    UNIQUE (platform, platform_user_id)
);

CREATE TABLE generations (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    request_text  TEXT NOT NULL,
    request_json  TEXT NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    rng_seed      INTEGER NOT NULL,
    midi          BLOB,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    error         TEXT,
    created_at    REAL NOT NULL,
    completed_at  REAL
);
CREATE INDEX generations_by_user ON generations (user_id, created_at);
CREATE INDEX generations_by_chat ON generations (platform, chat_id, created_at);

CREATE TABLE limits (
    platform TEXT NOT NULL,
    chat_id  TEXT NOT NULL,
    name     TEXT NOT NULL,
    value    INTEGER NOT NULL,
    PRIMARY KEY (platform, chat_id, name)
);

CREATE TABLE bans (
    id         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    banned_by  TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL,
    lifted_at  REAL,
    lifted_by  TEXT
);
CREATE INDEX bans_by_user ON bans (platform, user_id);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    old_value  TEXT,
    new_value  TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX audit_by_chat ON audit_log (platform, chat_id, id);

-- Append-only: what moderators did can never be rewritten after the fact.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
