-- 0004: enforcement. Policy values live in `settings` (policy.*).
-- Exemptions: service accounts and the break-glass account. A break-glass
-- account is "used" from its first login check until an admin seals it again.

CREATE TABLE exemptions (
    email      TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('service', 'break-glass')),
    reason     TEXT    NOT NULL CHECK (length(reason) > 0),
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    used_at    INTEGER,              -- break-glass: first check since the last seal
    sealed_at  INTEGER
) STRICT;

-- When `mb-2fa-policy check` first saw an account: with the time the policy
-- was switched on, the start of its grace period.
CREATE TABLE first_seen (
    email   TEXT    PRIMARY KEY,
    seen_at INTEGER NOT NULL
) STRICT;
