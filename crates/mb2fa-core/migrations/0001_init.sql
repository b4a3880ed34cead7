-- 0001: accounts, their backup codes, and tool-wide settings.
-- Times are Unix seconds (UTC). Each enrollment keeps its own TOTP parameters.

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    email           TEXT    NOT NULL UNIQUE,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'active')),
    secret          BLOB    NOT NULL,
    algorithm       TEXT    NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits          INTEGER NOT NULL CHECK (digits BETWEEN 6 AND 8),
    period          INTEGER NOT NULL CHECK (period BETWEEN 1 AND 300),
    issuer          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    activated_at    INTEGER,
    last_used_at    INTEGER,
    -- Replay protection: the last TOTP step accepted; that step and all
    -- earlier ones are never accepted again.
    last_step       INTEGER,
    drift_steps     INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER
) STRICT;

CREATE TABLE backup_codes (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tag        TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (account_id, tag)
) STRICT;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
