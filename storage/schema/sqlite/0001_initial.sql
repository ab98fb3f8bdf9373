-- Users, melodies, the quota ledger, limits, bans and the moderators' audit log.
-- Times are Unix seconds (REAL, UTC). An empty platform or chat_id means "every one below":
-- ('', '') is everywhere, ('discord', '') every Discord chat, ('discord', '42') one guild.

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL CHECK (platform <> ''),
    platform_user_id TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    first_seen       REAL NOT NULL,
    last_seen        REAL NOT NULL,
    UNIQUE (platform, platform_user_id)
);

-- AUTOINCREMENT: ids are shown to users ("again 42"), so a deleted melody's id is never reused.
CREATE TABLE generations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    request_text  TEXT NOT NULL,
    request_json  TEXT NOT NULL CHECK (json_valid(request_json)),
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    rng_seed      INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'done', 'failed')),
    error         TEXT,
    created_at    REAL NOT NULL,
    completed_at  REAL,
    midi          BLOB
);
CREATE INDEX generations_by_user ON generations (user_id, created_at);
CREATE INDEX generations_by_chat ON generations (platform, chat_id, created_at);

-- One row per accepted request, the only thing quota and cooldown count. It outlives the melody
-- (forget-me, retention) for the quota window, so deleting history never resets a quota.
CREATE TABLE usage (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    generation_id INTEGER UNIQUE REFERENCES generations (id) ON DELETE SET NULL,
    counts        INTEGER NOT NULL DEFAULT 1 CHECK (counts IN (0, 1))  -- 0 once it failed
);
CREATE INDEX usage_by_user_chat ON usage (user_id, platform, chat_id, created_at);
CREATE INDEX usage_by_time ON usage (created_at);

CREATE TABLE limits (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      INTEGER NOT NULL CHECK (value >= 0),
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, name),
    CHECK (platform <> '' OR chat_id = '')
) WITHOUT ROWID;

CREATE TABLE bans (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    banned_by  TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL CHECK (expires_at IS NULL OR expires_at > created_at),
    lifted_at  REAL,
    lifted_by  TEXT
);
CREATE INDEX bans_by_user ON bans (user_id, platform, chat_id);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    old_value  TEXT,
    new_value  TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX audit_by_scope ON audit_log (platform, chat_id, id);

-- Append-only: what moderators did can never be rewritten or erased after the fact.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
