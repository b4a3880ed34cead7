//! The MariaDB schema and its migrations.
//!
//! MariaDB commits DDL implicitly, so a migration cannot be one
//! transaction. Instead every step is idempotent (`CREATE TABLE IF NOT
//! EXISTS`, `ADD COLUMN IF NOT EXISTS`, `CREATE INDEX IF NOT EXISTS`) and
//! the version is recorded in `mb2fa_schema` only after the last of its
//! statements succeeded. A step cut short (a crash, a lost connection) left
//! no version row: the next tool that opens the store runs the whole step
//! again, and the statements that had been applied do nothing the second
//! time. So a half-applied migration finishes itself.
//!
//! The version numbers are the SQLite backend's: a MariaDB store begins at
//! version 5, the schema SQLite reaches after its migrations 1 to 5, and
//! each later step is the same change as SQLite's migration of that number.
//!
//! Every table is InnoDB with a primary key (Galera replicates only those
//! rows reliably), `utf8mb4` with binary collation (an email compares byte
//! for byte, as in SQLite). No triggers, `LOCK TABLES` or `GET_LOCK`:
//! Galera does not replicate the latter two, and creating triggers needs
//! privileges an appliance's database user should not have. The audit
//! table is kept append-only by grants instead (README, "Clusters").

/// `(version, statements)`, in order.
pub(super) const MIGRATIONS: &[(i64, &[&str])] = &[(5, V5), (6, V6), (7, V7)];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 7;

/// The table that records applied versions; its presence is what makes a
/// database an mb-2fa store.
pub(super) const SCHEMA_TABLE: &str = "mb2fa_schema";

/// Every table of the store (for `check`).
pub(super) const TABLES: &[&str] = &[
    "mb2fa_schema",
    "mb2fa_accounts",
    "mb2fa_backup_codes",
    "mb2fa_settings",
    "mb2fa_audit",
    "mb2fa_exemptions",
    "mb2fa_first_seen",
];

const V5: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS mb2fa_schema (
        version    INT    NOT NULL PRIMARY KEY,
        applied_at BIGINT NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS mb2fa_accounts (
        id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
        email           VARCHAR(254)  NOT NULL,
        state           VARCHAR(16)   NOT NULL,
        secret          VARBINARY(512) NOT NULL,
        algorithm       VARCHAR(16)   NOT NULL,
        digits          INT           NOT NULL,
        period          INT           NOT NULL,
        issuer          TEXT          NOT NULL,
        created_at      BIGINT        NOT NULL,
        activated_at    BIGINT        NULL,
        last_used_at    BIGINT        NULL,
        last_step       BIGINT        NULL,
        drift_steps     BIGINT        NOT NULL DEFAULT 0,
        failed_attempts BIGINT        NOT NULL DEFAULT 0,
        locked_until    BIGINT        NULL,
        recent_offsets  VARCHAR(255)  NOT NULL DEFAULT '',
        UNIQUE KEY mb2fa_accounts_email (email),
        CONSTRAINT mb2fa_accounts_state CHECK (state IN ('pending', 'active')),
        CONSTRAINT mb2fa_accounts_algorithm CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
        CONSTRAINT mb2fa_accounts_digits CHECK (digits BETWEEN 6 AND 8),
        CONSTRAINT mb2fa_accounts_period CHECK (period BETWEEN 1 AND 300)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS mb2fa_backup_codes (
        id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        account_id BIGINT       NOT NULL,
        tag        VARCHAR(64)  NOT NULL,
        hash       VARCHAR(255) NOT NULL,
        created_at BIGINT       NOT NULL,
        used_at    BIGINT       NULL,
        UNIQUE KEY mb2fa_backup_codes_tag (account_id, tag),
        CONSTRAINT mb2fa_backup_codes_account FOREIGN KEY (account_id)
            REFERENCES mb2fa_accounts (id) ON DELETE CASCADE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS mb2fa_settings (
        name  VARCHAR(191) NOT NULL PRIMARY KEY,
        value TEXT         NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS mb2fa_audit (
        id      BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        at      BIGINT       NOT NULL,
        tool    VARCHAR(64)  NOT NULL,
        action  VARCHAR(64)  NOT NULL,
        email   VARCHAR(254) NULL,
        outcome VARCHAR(64)  NOT NULL,
        actor   TEXT         NOT NULL,
        detail  TEXT         NOT NULL,
        node    VARCHAR(255) NOT NULL DEFAULT '',
        KEY mb2fa_audit_by_time (at),
        KEY mb2fa_audit_by_email (email, at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS mb2fa_exemptions (
        email      VARCHAR(254) NOT NULL PRIMARY KEY,
        kind       VARCHAR(16)  NOT NULL,
        reason     TEXT         NOT NULL,
        created_at BIGINT       NOT NULL,
        created_by TEXT         NOT NULL,
        used_at    BIGINT       NULL,
        sealed_at  BIGINT       NULL,
        CONSTRAINT mb2fa_exemptions_kind CHECK (kind IN ('service', 'break-glass')),
        CONSTRAINT mb2fa_exemptions_reason CHECK (CHAR_LENGTH(reason) > 0)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS mb2fa_first_seen (
        email   VARCHAR(254) NOT NULL PRIMARY KEY,
        seen_at BIGINT       NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
];

/// Count an account's unused backup codes from an index (`mb-2fa-list`
/// counts them for every account). MariaDB has no partial indexes, so the
/// index covers `used_at` as well (SQLite: migration 0006).
const V6: &[&str] = &["CREATE INDEX IF NOT EXISTS mb2fa_backup_codes_unused
        ON mb2fa_backup_codes (account_id, used_at)"];

/// Through what a PAM login came (SQLite: migration 0007).
const V7: &[&str] = &["ALTER TABLE mb2fa_audit
        ADD COLUMN IF NOT EXISTS via VARCHAR(1100) NOT NULL DEFAULT ''"];
