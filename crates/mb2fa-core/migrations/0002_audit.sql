-- 0002: the audit trail. Append-only: triggers refuse UPDATE and DELETE, so
-- the tools (and anyone using the sqlite3 shell casually) cannot rewrite it.
-- Never holds a secret or a code.

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,          -- Unix seconds (UTC)
    tool    TEXT    NOT NULL,          -- e.g. mb-2fa-verify
    action  TEXT    NOT NULL,          -- enable, verify, disable, backup_codes, unlock, resync, ...
    email   TEXT,                      -- the account acted on, if any
    outcome TEXT    NOT NULL,          -- ok, accepted, rejected, locked, not_enrolled, conflict, ...
    actor   TEXT    NOT NULL,          -- SUDO_USER, else the invoking user
    detail  TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX audit_by_email ON audit (email, at);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
