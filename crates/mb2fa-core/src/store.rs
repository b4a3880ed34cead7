//! The SQLite store: the only module that speaks SQL.
//!
//! Everything above it goes through [`Store::read`] and [`Store::write`] and
//! the narrow methods of [`Tx`], so the rules never see a connection and the
//! backend can later be swapped (a shared PostgreSQL for clustered appliances).
//!
//! - WAL, so `mb-2fa-list` never blocks a login; `synchronous=FULL`, so an
//!   accepted code survives a power cut (a lost "last step" would allow replay).
//! - A busy timeout, so concurrent tools queue instead of failing.
//! - Every read-modify-write runs in `BEGIN IMMEDIATE`: the write lock is taken
//!   before the read, so two verifications of one code serialise and the second
//!   sees the first's step.
//! - Forward-only numbered migrations recorded in `PRAGMA user_version`.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::totp::{Algorithm, TotpParams};

/// Where the tools keep their database unless told otherwise.
pub const DEFAULT_DB_PATH: &str = "/var/lib/mailborder/2fa.db";

/// How long a tool waits for another one's write lock before giving up (exit 10).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the directory (0700) and file (0600) if missing: enrollment.
    CreateIfMissing,
    /// Fail with exit 10 if the database does not exist: every other tool,
    /// so "no enrollment" is never said without a successful lookup.
    MustExist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Active,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
        }
    }

    fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "active" => Some(State::Active),
            _ => None,
        }
    }
}

/// An account with its secret, for verification.
#[derive(Debug)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub state: State,
    pub secret: Secret,
    pub params: TotpParams,
    pub issuer: String,
    pub last_step: Option<i64>,
    pub drift_steps: i64,
}

/// An account as `mb-2fa-list` shows it: no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub email: String,
    pub state: State,
    pub issuer: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub backup_codes_left: u32,
    pub drift_steps: i64,
    pub locked_until: Option<i64>,
}

/// A new enrollment to store.
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub secret: &'a Secret,
    pub params: TotpParams,
    pub issuer: &'a str,
    pub created_at: i64,
}

/// One stored backup code.
#[derive(Debug, Clone)]
pub struct StoredBackupCode {
    pub id: i64,
    pub hash: String,
    pub used: bool,
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    pub fn open(path: &Path, mode: OpenMode) -> Result<Store> {
        if mode == OpenMode::CreateIfMissing {
            create_file(path)?;
        } else if !path.exists() {
            return Err(Error::storage(format!(
                "no 2FA database at {}: nothing is enrolled yet, or --db / MB2FA_DB points to the wrong file",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| db_error(path, &e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // The first statement that reads the file: a non-SQLite file fails here.
        let mode: String = self
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            self.conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(err)?;
        }
        Ok(())
    }

    fn user_version(conn: &Connection, path: &Path) -> Result<i64> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| db_error(path, &e))
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let version = Self::user_version(&self.conn, &path)?;
        check_not_newer(version, &path)?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Another process may have migrated while we waited for the lock.
        let version = Self::user_version(&tx, &path)?;
        check_not_newer(version, &path)?;
        let from = usize::try_from(version).unwrap_or(0);
        for sql in &MIGRATIONS[from..] {
            tx.execute_batch(sql).map_err(err)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Run `f` in a read transaction: one consistent snapshot.
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(TransactionBehavior::Deferred, f)
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction, committed only if `f`
    /// returns `Ok`. The write lock is held from before the first read.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(TransactionBehavior::Immediate, f)
    }

    fn run<T>(
        &mut self,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(behavior)
            .map_err(|e| db_error(&path, &e))?;
        let wrapped = Tx { tx, path: &path };
        let value = f(&wrapped)?;
        wrapped.tx.commit().map_err(|e| db_error(&path, &e))?;
        Ok(value)
    }
}

fn check_not_newer(version: i64, path: &Path) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(Error::storage(format!(
            "database {} has schema version {version}, newer than this mb-2fa understands ({SCHEMA_VERSION}): upgrade mb-2fa; the database was left untouched",
            path.display()
        )));
    }
    Ok(())
}

/// Create the parent directory (0700) and an empty database file (0600) so
/// SQLite never creates them with the umask's looser modes. SQLite gives its
/// WAL and SHM files the database file's mode.
fn create_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    Error::storage(format!(
                        "cannot create directory {}: {e}; create it (mode 0700) or choose another --db",
                        dir.display()
                    ))
                })?;
        }
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == IoErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::storage(format!(
            "cannot create database {}: {e}; check the directory's owner and mode, or choose another --db",
            path.display()
        ))),
    }
}

/// Turn an SQLite error into a one-line exit-10 message naming the file and
/// the cure.
fn db_error(path: &Path, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let p = path.display();
    let msg = match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => format!(
            "database {p} is busy: another mb-2fa process held it for more than {} s; try again",
            BUSY_TIMEOUT.as_secs()
        ),
        Some(C::NotADatabase) => format!(
            "{p} is not an SQLite database (or its header is damaged): point --db at the 2FA database or restore it from backup"
        ),
        Some(C::DatabaseCorrupt) => format!(
            "database {p} is corrupt: restore it from backup (check it with: sqlite3 {p} 'PRAGMA integrity_check')"
        ),
        Some(C::ReadOnly) => format!(
            "database {p} is read-only: run as the owner of the file (usually root, with sudo) or fix its mode (0600)"
        ),
        Some(C::PermissionDenied | C::CannotOpen) => format!(
            "cannot open database {p}: {e}; check that it is a file you may read and write (run with sudo?)"
        ),
        Some(C::DiskFull) => format!("disk full while writing {p}: free some space and try again"),
        Some(C::SystemIoFailure) => format!("I/O error on database {p}: {e}; check the disk"),
        _ => format!("database {p}: {e}"),
    };
    Error::storage(msg)
}

/// A transaction with the store's narrow set of operations.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl Tx<'_> {
    fn err(&self, e: rusqlite::Error) -> Error {
        db_error(self.path, &e)
    }

    fn damaged(&self, what: &str) -> Error {
        Error::storage(format!(
            "database {} holds an invalid {what}: it is damaged; restore it from backup",
            self.path.display()
        ))
    }

    pub fn account(&self, email: &str) -> Result<Option<Account>> {
        let row = self
            .tx
            .query_row(
                "SELECT id, email, state, secret, algorithm, digits, period, issuer, last_step, drift_steps
                 FROM accounts WHERE email = ?1",
                params![email],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, i64>(9)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((id, email, state, secret, alg, digits, period, issuer, last_step, drift)) = row
        else {
            return Ok(None);
        };
        let secret = Secret::from_bytes(secret);
        let state = State::parse(&state).ok_or_else(|| self.damaged("account state"))?;
        let algorithm = Algorithm::parse(&alg).ok_or_else(|| self.damaged("TOTP algorithm"))?;
        let params = TotpParams {
            algorithm,
            digits: u8::try_from(digits).map_err(|_| self.damaged("digit count"))?,
            period: u32::try_from(period).map_err(|_| self.damaged("period"))?,
        }
        .validated()?;
        Ok(Some(Account {
            id,
            email,
            state,
            secret,
            params,
            issuer,
            last_step,
            drift_steps: drift,
        }))
    }

    /// Does the email have an enrollment, and in which state?
    pub fn account_state(&self, email: &str) -> Result<Option<(i64, State)>> {
        let row = self
            .tx
            .query_row(
                "SELECT id, state FROM accounts WHERE email = ?1",
                params![email],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match row {
            None => Ok(None),
            Some((id, s)) => Ok(Some((
                id,
                State::parse(&s).ok_or_else(|| self.damaged("account state"))?,
            ))),
        }
    }

    pub fn summaries(&self) -> Result<Vec<AccountSummary>> {
        let mut stmt = self
            .tx
            .prepare(
                "SELECT a.email, a.state, a.issuer, a.created_at, a.activated_at, a.last_used_at,
                        (SELECT count(*) FROM backup_codes b WHERE b.account_id = a.id AND b.used_at IS NULL),
                        a.drift_steps, a.locked_until
                 FROM accounts a ORDER BY a.email",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (email, state, issuer, created_at, activated_at, last_used_at, left, drift, locked) =
                row.map_err(|e| self.err(e))?;
            out.push(AccountSummary {
                email,
                state: State::parse(&state).ok_or_else(|| self.damaged("account state"))?,
                issuer,
                created_at,
                activated_at,
                last_used_at,
                backup_codes_left: u32::try_from(left).unwrap_or(0),
                drift_steps: drift,
                locked_until: locked,
            });
        }
        Ok(out)
    }

    pub fn insert_account(&self, a: &NewAccount<'_>) -> Result<i64> {
        self.tx
            .execute(
                "INSERT INTO accounts (email, state, secret, algorithm, digits, period, issuer, created_at)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    a.email,
                    a.secret.as_bytes(),
                    a.params.algorithm.as_str(),
                    a.params.digits,
                    a.params.period,
                    a.issuer,
                    a.created_at
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Remove an account and (by cascade) its backup codes. False if absent.
    pub fn delete_account(&self, id: i64) -> Result<bool> {
        let n = self
            .tx
            .execute("DELETE FROM accounts WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Record an accepted TOTP step; activate a pending enrollment.
    pub fn record_totp_success(&self, id: i64, step: i64, now: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE accounts SET
                    last_step = ?2,
                    last_used_at = ?3,
                    failed_attempts = 0,
                    activated_at = CASE WHEN state = 'pending' THEN ?3 ELSE activated_at END,
                    state = 'active'
                 WHERE id = ?1",
                params![id, step, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn backup_code_by_tag(
        &self,
        account_id: i64,
        tag: &str,
    ) -> Result<Option<StoredBackupCode>> {
        self.tx
            .query_row(
                "SELECT id, hash, used_at IS NOT NULL FROM backup_codes WHERE account_id = ?1 AND tag = ?2",
                params![account_id, tag],
                |r| {
                    Ok(StoredBackupCode {
                        id: r.get(0)?,
                        hash: r.get(1)?,
                        used: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Spend a backup code. False if it was spent (or replaced) meanwhile:
    /// the `used_at IS NULL` guard makes the spend happen at most once.
    pub fn spend_backup_code(&self, account_id: i64, code_id: i64, now: i64) -> Result<bool> {
        let n = self
            .tx
            .execute(
                "UPDATE backup_codes SET used_at = ?3
                 WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL",
                params![code_id, account_id, now],
            )
            .map_err(|e| self.err(e))?;
        if n == 1 {
            self.tx
                .execute(
                    "UPDATE accounts SET last_used_at = ?2, failed_attempts = 0 WHERE id = ?1",
                    params![account_id, now],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(n == 1)
    }

    pub fn backup_codes_left(&self, account_id: i64) -> Result<u32> {
        let n: i64 = self
            .tx
            .query_row(
                "SELECT count(*) FROM backup_codes WHERE account_id = ?1 AND used_at IS NULL",
                params![account_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(u32::try_from(n).unwrap_or(0))
    }

    /// Replace all of an account's backup codes with `(tag, hash)` rows.
    pub fn replace_backup_codes(
        &self,
        account_id: i64,
        rows: &[(String, String)],
        now: i64,
    ) -> Result<()> {
        self.tx
            .execute(
                "DELETE FROM backup_codes WHERE account_id = ?1",
                params![account_id],
            )
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .tx
            .prepare(
                "INSERT INTO backup_codes (account_id, tag, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(|e| self.err(e))?;
        for (tag, hash) in rows {
            stmt.execute(params![account_id, tag, hash, now])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.tx
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_dir_0700_and_file_0600_and_wal() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sub/dir/2fa.db");
        let store = Store::open(&path, OpenMode::CreateIfMissing).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&tmp.path().join("sub/dir")), 0o700);
        let jm: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("pragma");
        assert_eq!(jm, "wal");
        assert_eq!(
            Store::user_version(&store.conn, &path).expect("v"),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn must_exist_refuses_a_missing_file_and_creates_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.db");
        let err = Store::open(&path, OpenMode::MustExist).expect_err("missing");
        assert_eq!(err.exit_code(), 10);
        assert!(err.message().contains(&path.display().to_string()));
        assert!(!path.exists());
    }

    #[test]
    fn refuses_non_sqlite_and_newer_schema() {
        let tmp = tempfile::tempdir().expect("tmp");
        let junk = tmp.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 4096]).expect("write");
        let err = Store::open(&junk, OpenMode::MustExist).expect_err("junk");
        assert_eq!(err.exit_code(), 10);
        assert!(
            err.message().contains("not an SQLite database"),
            "{}",
            err.message()
        );

        let newer = tmp.path().join("newer.db");
        {
            let c = Connection::open(&newer).expect("open");
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("set");
        }
        let err = Store::open(&newer, OpenMode::MustExist).expect_err("newer");
        assert_eq!(err.exit_code(), 10);
        assert!(err.message().contains("newer"), "{}", err.message());
        let c = Connection::open(&newer).expect("open");
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, SCHEMA_VERSION + 1, "a newer schema is never downgraded");
    }

    #[test]
    fn failed_write_rolls_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.db");
        let mut store = Store::open(&path, OpenMode::CreateIfMissing).expect("open");
        let secret = Secret::from_bytes(vec![7; 20]);
        let r: Result<()> = store.write(|tx| {
            tx.insert_account(&NewAccount {
                email: "a@b",
                secret: &secret,
                params: TotpParams::default(),
                issuer: "Mailborder",
                created_at: 1,
            })?;
            Err(Error::conflict("stop"))
        });
        assert!(r.is_err());
        let found = store.read(|tx| tx.account_state("a@b")).expect("read");
        assert_eq!(found, None);
    }
}
