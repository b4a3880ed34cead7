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

use std::fs::DirBuilder;
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::cell::RefCell;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::audit::{self, Record};
use crate::crypto::{self, MasterKey};
use crate::error::{Error, Result};
use crate::key_file;
use crate::secret::Secret;
use crate::secure_open;
use crate::throttle;
use crate::totp::{Algorithm, TotpParams};
use sha2::{Digest, Sha256};

/// The largest failure count a tool ever stores (it stops counting long
/// before: the lock doubles up to 1 h); a larger one was planted.
const MAX_STORED_COUNT: i64 = 1 << 40;

/// Where the tools keep their database unless told otherwise.
pub const DEFAULT_DB_PATH: &str = "/var/lib/mailborder/2fa.db";

/// How long a tool waits for another one's write lock before giving up (exit 10).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// On the hot path the WAL is copied into the database file once it passes
/// this size. Every tool that opens the database alone re-reads the whole WAL
/// (SQLite rebuilds its index), so it must stay small; each checkpoint costs
/// two fsyncs, so not after every commit. 64 pages is a dozen verifications.
pub const WAL_CHECKPOINT_BYTES: u64 = 64 * 4096;

/// A checkpoint waits this long for other processes, then is left to a later
/// write: it is housekeeping, and the commit before it is already durable.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
/// Every tool applies them on open: none needs the key.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_audit.sql"),
    include_str!("../migrations/0003_skew.sql"),
    include_str!("../migrations/0004_policy.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The settings key holding the fingerprint of the key this database's
/// secrets are sealed with, recorded with the first enrollment (or by
/// `mb-2fa-store init` / `seal-plaintext`). A database with accounts but no
/// fingerprint is never trusted: see [`Store::unlock`].
const KEY_FINGERPRINT: &str = "key_fingerprint";

/// How a tool opens the store. No tool ever turns a missing or foreign file
/// into a new empty database except the two that create one on purpose: a
/// lost database must never silently become "nobody is enrolled".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode<'a> {
    /// Exit 10 if there is no initialised mb-2fa database: every tool but
    /// the two below, so "no enrollment" is never said without a lookup.
    MustExist,
    /// The first enrollment on a fresh appliance: create the database (and
    /// its directory, 0700) only when neither it nor the key file exists. A
    /// key without a database means the database was lost: exit 10.
    CreateIfFresh { key_file: &'a Path },
    /// `mb-2fa-store init`: create a new database; exit 10 if one exists.
    Init,
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
    pub created_at: i64,
    pub last_step: Option<i64>,
    pub drift_steps: i64,
    /// Offsets of the last accepted codes, oldest first (see `skew`).
    pub recent_offsets: Vec<i64>,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

/// An account's lockout state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
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
    pub failed_attempts: i64,
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

/// An exemption from the 2FA requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub email: String,
    /// `service` or `break-glass`.
    pub kind: String,
    pub reason: String,
    pub created_at: i64,
    pub created_by: String,
    pub used_at: Option<i64>,
    pub sealed_at: Option<i64>,
}

fn exemption_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Exemption> {
    Ok(Exemption {
        email: r.get(0)?,
        kind: r.get(1)?,
        reason: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
        used_at: r.get(5)?,
        sealed_at: r.get(6)?,
    })
}

/// Which enrollment an account row holds. Row ids are reused (a
/// re-enrollment deletes and inserts, and may get the same id), so an
/// operation that decides in two transactions binds to `generation` too: a
/// digest of the sealed secret, whose random nonce is new with every
/// enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentRef {
    pub id: i64,
    pub state: State,
    pub generation: [u8; 32],
}

impl EnrollmentRef {
    /// The same enrollment (its state may have moved on).
    pub fn same_as(&self, other: &EnrollmentRef) -> bool {
        self.id == other.id && self.generation == other.generation
    }
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
    key: Option<MasterKey>,
    /// Checkpoint only when the WAL is long (`defer_checkpoints`).
    deferred_checkpoints: bool,
    /// How long the busy handler waits for a lock, in milliseconds.
    lock_wait_ms: Arc<AtomicU64>,
}

impl Store {
    pub fn open(path: &Path, mode: OpenMode<'_>) -> Result<Store> {
        let p = path.display();
        let dir = secure_open::parent_dir(path);
        match mode {
            OpenMode::MustExist => {}
            OpenMode::Init => {
                make_dir(&dir)?;
                secure_open::check_dir(&dir, secure_open::DATABASE)?;
                if !create_initialised(path)? {
                    return Err(Error::storage(format!(
                        "a database already exists at {p}: nothing was changed (check it with mb-2fa-store check)"
                    )));
                }
            }
            OpenMode::CreateIfFresh { key_file } => {
                if std::fs::symlink_metadata(path).is_err() {
                    if std::fs::symlink_metadata(key_file).is_ok() {
                        return Err(lost_database(path, key_file));
                    }
                    key_file::check_can_create(key_file)?;
                    make_dir(&dir)?;
                    secure_open::check_dir(&dir, secure_open::DATABASE)?;
                    // Another first enrollment may win the race: then use its database.
                    create_initialised(path)?;
                }
            }
        }
        secure_open::check_dir(&dir, secure_open::DATABASE)?;
        // SQLite's NOFOLLOW refuses a symlink anywhere in the path; only the
        // file itself must not be one (a database directory moved to
        // another disk and linked back is fine). So SQLite gets the real
        // directory, checked above, and the file name.
        let real = match (dir.canonicalize(), path.file_name()) {
            (Ok(d), Some(name)) => d.join(name),
            _ => path.to_path_buf(),
        };
        let path = real.as_path();
        let p = path.display();
        let Some((_file, meta)) = secure_open::open(path, secure_open::DATABASE)? else {
            return Err(Error::storage(format!(
                "no 2FA database at {p}: on a fresh appliance enroll the first account with mb-2fa-enable or run mb-2fa-store init; else --db / MB2FA_DB points to the wrong file, or the database was lost (restore it from backup)"
            )));
        };
        if meta.len() == 0 {
            // An empty file (a failed restore, a full disk) would open as an
            // empty database and answer "not enrolled": fail closed instead.
            return Err(Error::storage(format!(
                "database {p} is empty (0 bytes): restore it from backup"
            )));
        }
        // SQLite's own files: a loose or foreign -wal/-shm is refused too.
        let wal = wal_path(path);
        let wal_was_there = secure_open::open(&wal, secure_open::DATABASE)?.is_some();
        secure_open::open(&shm_path(path), secure_open::DATABASE)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| db_error(path, &e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            key: None,
            deferred_checkpoints: false,
            lock_wait_ms: Arc::new(AtomicU64::new(0)),
        };
        set_wait(&store.lock_wait_ms, BUSY_TIMEOUT);
        store.configure()?;
        store.migrate()?;
        // Only when this run created the WAL (a reader that may not write
        // the directory creates none and has nothing to make durable).
        if !wal_was_there && wal.exists() {
            store.sync_dir()?;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Make the directory entries of a new database and WAL durable. SQLite
    /// would sync the directory on every run's first commit (it cannot tell a
    /// new WAL from an old one); it is built without that (`.cargo/config.toml`,
    /// `SQLITE_DISABLE_DIRSYNC`) and this runs once, when the WAL is new.
    fn sync_dir(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                Error::storage(format!(
                    "cannot sync directory {}: {e}; check the disk",
                    dir.display()
                ))
            })
    }

    /// For the hot path (TOTP verification): after a write, copy the WAL into
    /// the database file only once it passes [`WAL_CHECKPOINT_BYTES`], not
    /// every time. Until then the newest changes live in `2fa.db-wal` (as
    /// durable as in the database file: the commit synced them), which is why
    /// backups must use SQLite's backup API, not `cp` of one file.
    pub fn defer_checkpoints(&mut self) {
        self.deferred_checkpoints = true;
    }

    fn configure(&mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let waiter = lock_waiter(Arc::clone(&self.lock_wait_ms));
        self.conn.busy_handler(Some(waiter)).map_err(err)?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // Closing never checkpoints: the WAL and its index stay between runs,
        // so a verification costs one fsync (its commit) instead of five
        // (create the WAL, sync it and its directory, commit, checkpoint,
        // delete). Checkpoints happen after commits instead: see `after_write`.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(err)?;
        // Deleted and overwritten content (a sealed-over plaintext secret, a
        // removed account) is zeroed in the file, not left in free pages.
        self.conn
            .pragma_update(None, "secure_delete", true)
            .map_err(err)?;
        // The first statement that reads the file: a non-SQLite file fails
        // here, before anything could write to it.
        if Self::user_version(&self.conn, &path)? == 0 {
            // Every database mb-2fa makes is complete before it has a name
            // (`create_initialised`): this one is someone else's, or blank.
            return Err(Error::storage(format!(
                "{} is not an initialised mb-2fa database (an SQLite file without its schema): point --db at the 2FA database or restore it from backup; nothing was changed",
                path.display()
            )));
        }
        let mode: String = self
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // A new database. When several tools use it first at once, each
            // holds a read lock and wants the exclusive one to switch it to
            // WAL; SQLite refuses all but one at once (SQLITE_BUSY without
            // calling the busy handler, as waiting would deadlock). Retry:
            // the winner's switch is then seen, or ours goes through.
            let started = Instant::now();
            let mut tries = 0u64;
            loop {
                match self.conn.pragma_update(None, "journal_mode", "WAL") {
                    Ok(()) => break,
                    Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                        tries += 1;
                        std::thread::sleep(Duration::from_micros(500 + (tries * 977) % 2000));
                    }
                    Err(e) => return Err(err(e)),
                }
            }
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
        if version >= SCHEMA_VERSION {
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
        if version < SCHEMA_VERSION {
            let from = usize::try_from(version).unwrap_or(0);
            for sql in &MIGRATIONS[from..] {
                tx.execute_batch(sql).map_err(err)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        // Once per database: let the file alone hold the new schema.
        self.checkpoint();
        Ok(())
    }

    /// Load the key (creating it when the database holds no account and no
    /// key was ever recorded, or the recorded key sealed nothing any more)
    /// and check it is this database's key. Needed before any secret is read
    /// or written; a wrong or missing key is exit 10 and changes nothing.
    ///
    /// Never seals anything: a database with accounts but no recorded key
    /// fingerprint is refused, because a database writer can delete that
    /// record (sealing "plaintext" then would re-seal whatever bytes they
    /// chose). Sealing a real version 1 database is the explicit, audited
    /// [`Store::seal_plaintext`].
    pub fn unlock(&mut self, key_path: &Path) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        // The usual case needs no write lock: key present and matching.
        if let Some(key) = key_file::load(key_path)? {
            let fp = fingerprint_in_db(&self.conn, &path)?;
            if fp.as_deref() == Some(key.fingerprint().as_str()) {
                self.key = Some(key);
                return Ok(());
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let fp = fingerprint_in_db(&tx, &path)?;
        let accounts = count_accounts(&tx, &path)?;
        let key = match (key_file::load(key_path)?, &fp) {
            (Some(key), Some(fp)) if *fp != key.fingerprint() => {
                return Err(Error::storage(format!(
                    "key file {} (fingerprint {}) is not the key of database {} (fingerprint {fp}): restore the right key file from backup; nothing was changed",
                    key_path.display(),
                    key.fingerprint(),
                    path.display()
                )));
            }
            (_, None) if accounts > 0 => return Err(unrecorded_key(&path, accounts)),
            (Some(key), _) => key,
            // Nothing is sealed (a new database, or every account was removed
            // after the key was lost): a new key can safely take over.
            (None, _) if accounts == 0 => key_file::create(key_path)?,
            (None, Some(fp)) => {
                return Err(Error::storage(format!(
                    "key file {} is missing, and the secrets in {} are sealed with key {fp}: restore the key file from backup or pass --key-file (mb-2fa-disable works without it)",
                    key_path.display(),
                    path.display()
                )));
            }
            (None, None) => return Err(unrecorded_key(&path, accounts)),
        };
        if fp.as_deref() != Some(key.fingerprint().as_str()) {
            set_fingerprint(&tx, &key, &path)?;
        }
        tx.commit().map_err(err)?;
        self.key = Some(key);
        Ok(())
    }

    /// `mb-2fa-store seal-plaintext`: the one-time step that seals the
    /// plaintext secrets of a version 1 database (mb-2fa built from source
    /// before sealing existed; no package ever shipped one). Refused when a
    /// key is already recorded, when the key file exists, or when any secret
    /// already looks sealed, so it can never re-seal sealed bytes or seal
    /// with a key someone else chose. Creates the key. One transaction with
    /// its audit record (`record(n)` for `n` sealed secrets).
    pub fn seal_plaintext(
        &mut self,
        key_path: &Path,
        record: impl FnOnce(usize) -> Record,
    ) -> Result<usize> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        if let Some(fp) = fingerprint_in_db(&tx, &path)? {
            return Err(Error::conflict(format!(
                "database {} already records key {fp}: its secrets are sealed; nothing was changed",
                path.display()
            )));
        }
        let rows: Vec<(i64, String, i64, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT id, email, created_at, secret FROM accounts ORDER BY id")
                .map_err(err)?;
            let mapped = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(err)?;
            mapped.collect::<rusqlite::Result<_>>().map_err(err)?
        };
        if let Some((_, email, _, _)) = rows.iter().find(|r| !crypto::is_plausible_plaintext(&r.3))
        {
            return Err(Error::storage(format!(
                "the stored secret of {} in {} is not a plaintext version 1 secret (it looks sealed or damaged): refusing to seal anything; this is not a version 1 database, or it was altered: restore it from backup",
                crate::text::escape_for_terminal(email),
                path.display()
            )));
        }
        if key_file::load(key_path)?.is_some() {
            // A version 1 database never had a key: one beside it means its
            // secrets were sealed once (and the fingerprint record deleted).
            return Err(Error::storage(format!(
                "key file {} exists, but a version 1 database never had one: refusing to seal; if it was left by an interrupted seal-plaintext of this database, move it away and run again; nothing was changed",
                key_path.display()
            )));
        }
        let key = key_file::create(key_path)?;
        for (id, email, created_at, plain) in &rows {
            let secret = Secret::from_bytes(plain.clone());
            let sealed = crypto::seal(&key, &secret, email, *created_at)?;
            tx.execute(
                "UPDATE accounts SET secret = ?2 WHERE id = ?1",
                params![id, sealed],
            )
            .map_err(err)?;
        }
        set_fingerprint(&tx, &key, &path)?;
        let r = record(rows.len());
        insert_audit(&tx, &r).map_err(err)?;
        tx.commit().map_err(err)?;
        let _ = audit::send_to_syslog(std::slice::from_ref(&r));
        // Not left to a later checkpoint: until the sealed pages reach the
        // database file, a copy of that file alone would still hold the
        // plaintext secrets.
        self.checkpoint();
        self.key = Some(key);
        Ok(rows.len())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        Self::user_version(&self.conn, &self.path)
    }

    /// The recorded key fingerprint, if any.
    pub fn recorded_fingerprint(&self) -> Result<Option<String>> {
        fingerprint_in_db(&self.conn, &self.path)
    }

    /// SQLite's `PRAGMA quick_check`: `Ok(None)` when the file is sound,
    /// else its first complaint.
    pub fn quick_check(&self) -> Result<Option<String>> {
        let first: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| db_error(&self.path, &e))?;
        Ok((first != "ok").then_some(first))
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
        let (value, records) = {
            let tx = self
                .conn
                .transaction_with_behavior(behavior)
                .map_err(|e| db_error(&path, &e))?;
            let wrapped = Tx {
                tx,
                path: &path,
                key: self.key.as_ref(),
                audit: RefCell::new(Vec::new()),
            };
            let value = f(&wrapped)?;
            let records = wrapped.audit.take();
            wrapped.tx.commit().map_err(|e| db_error(&path, &e))?;
            (value, records)
        };
        // Only what was committed goes to syslog; an alert that could not
        // be sent is said on stderr and recorded.
        let lost = audit::send_to_syslog(&records);
        if !lost.is_empty() {
            self.record_undelivered(&lost);
        }
        if matches!(behavior, TransactionBehavior::Immediate) {
            self.after_write();
        }
        Ok(value)
    }

    /// The break-glass alerts syslog did not get: one line each on stderr
    /// and an audit row (best effort: the alert's own row is committed).
    fn record_undelivered(&mut self, lost: &[audit::Undelivered]) {
        let path = self.path.clone();
        for u in lost {
            let who = u.record.email.as_deref().unwrap_or("-");
            eprintln!(
                "{}: ALERT not delivered to syslog ({}): break-glass account {} was used; the alert is in the audit trail (mb-2fa-audit)",
                u.record.tool,
                crate::text::escape_for_terminal(&u.why),
                crate::text::escape_for_terminal(who)
            );
        }
        let rows: Vec<Record> = lost
            .iter()
            .map(|u| Record {
                at: u.record.at,
                tool: u.record.tool.clone(),
                action: "alert".to_string(),
                email: u.record.email.clone(),
                outcome: "undelivered".to_string(),
                actor: u.record.actor.clone(),
                detail: format!("break-glass alert not sent to syslog: {}", u.why),
            })
            .collect();
        let result = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                for r in &rows {
                    insert_audit(&tx, r)?;
                }
                tx.commit()
            });
        if let Err(e) = result {
            eprintln!("{}", db_error(&path, &e).message());
        }
    }

    /// Copy the WAL into the database file and truncate it: at once after an
    /// admin change (so the database file alone holds every enrollment), and
    /// on the hot path only when the WAL has grown. Failure is not an error:
    /// the commit is already durable in the WAL, and the next write retries.
    fn after_write(&mut self) {
        let wal = wal_path(&self.path);
        let long = std::fs::metadata(&wal).is_ok_and(|m| m.len() >= WAL_CHECKPOINT_BYTES);
        if !self.deferred_checkpoints || long {
            self.checkpoint();
        }
    }

    /// Copy the WAL into the database file and truncate it, if no other
    /// process is in the way for [`CHECKPOINT_WAIT`].
    fn checkpoint(&mut self) {
        set_wait(&self.lock_wait_ms, CHECKPOINT_WAIT);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        set_wait(&self.lock_wait_ms, BUSY_TIMEOUT);
    }
}

/// SQLite's stock busy handler sleeps ever longer, up to 100 ms a time, so
/// in a burst of logins an unlucky process slept through release after
/// release of the write lock (16 concurrent verifiers: p99 0.6 s, worst 3.5 s
/// of a 5 s limit). This one backs off only to about 5 ms, jittered per
/// process so waiters do not poll in step (polling every millisecond cut the
/// tail too, but cost a third of the throughput at 32 waiters on 2 cores),
/// until the limit has passed since the first refusal.
fn lock_waiter(limit_ms: Arc<AtomicU64>) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut started = Instant::now();
    let salt = u64::from(std::process::id());
    move |attempts| {
        if attempts == 0 {
            started = Instant::now();
        }
        let limit = Duration::from_millis(limit_ms.load(Ordering::Relaxed));
        if started.elapsed() >= limit {
            return false;
        }
        let spin = u64::try_from(attempts).unwrap_or(0);
        let base = spin.saturating_mul(250).saturating_add(500).min(5000);
        let jitter = salt
            .wrapping_mul(2_654_435_761)
            .wrapping_add(spin.wrapping_mul(40_503))
            % base;
        std::thread::sleep(Duration::from_micros(base / 2 + jitter));
        true
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

fn set_wait(limit_ms: &AtomicU64, wait: Duration) {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    limit_ms.store(ms, Ordering::Relaxed);
}

/// Where SQLite keeps the write-ahead log of the database at `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}

fn count_accounts(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<i64> {
    tx.query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .map_err(|e| db_error(path, &e))
}

/// The one statement that writes an audit row.
fn insert_audit(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit (at, tool, action, email, outcome, actor, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            r.at, r.tool, r.action, r.email, r.outcome, r.actor, r.detail
        ],
    )?;
    Ok(())
}

fn fingerprint_in_db(conn: &Connection, path: &Path) -> Result<Option<String>> {
    conn.query_row(
        "SELECT value FROM settings WHERE key = ?1",
        params![KEY_FINGERPRINT],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| db_error(path, &e))
}

fn set_fingerprint(conn: &Connection, key: &MasterKey, path: &Path) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![KEY_FINGERPRINT, key.fingerprint()],
    )
    .map_err(|e| db_error(path, &e))?;
    Ok(())
}

/// Accounts but no recorded key: altered by a database writer, or a
/// version 1 database. Either way nothing is sealed or trusted.
fn unrecorded_key(path: &Path, accounts: i64) -> Error {
    Error::storage(format!(
        "database {} holds {accounts} account(s) but records no key fingerprint: it was altered (restore it from backup), or it is a version 1 database with plaintext secrets (mb-2fa built from source before 0.1; then seal them once: mb-2fa-store seal-plaintext); nothing was changed",
        path.display()
    ))
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

/// Create the database's directory (0700, and any missing parent) so it is
/// never made with the umask's looser mode.
fn make_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Error::storage(format!(
                "cannot create directory {}: {e}; create it (mode 0700) or choose another --db",
                dir.display()
            ))
        })
}

/// Build a complete database (every migration, `user_version` set) in a
/// private temporary file (0600) beside `path`, then link it into place
/// without replacing anything. So a database at `path` is always an
/// initialised one: a crash leaves no half-made file there, and a file a
/// tool finds with `user_version` 0 was not made by mb-2fa. `Ok(false)`:
/// another process created `path` first (its database is used instead).
fn create_initialised(path: &Path) -> Result<bool> {
    let dir = secure_open::parent_dir(path);
    let p = path.display();
    let io = |e: std::io::Error| {
        Error::storage(format!(
            "cannot create database {p}: {e}; check the directory's owner and mode, or choose another --db"
        ))
    };
    let tmp = tempfile::Builder::new()
        .prefix(".2fa-new-")
        .suffix(".db")
        .tempfile_in(&dir)
        .map_err(io)?;
    {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn =
            Connection::open_with_flags(tmp.path(), flags).map_err(|e| db_error(path, &e))?;
        let err = |e: rusqlite::Error| db_error(path, &e);
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let tx = conn.transaction().map_err(err)?;
        for sql in MIGRATIONS {
            tx.execute_batch(sql).map_err(err)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
            Ok(true)
        }
        Err(e) if e.error.kind() == IoErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(e.error)),
    }
}

/// The key exists, the database does not: it was lost (or `--db` is wrong).
/// Creating an empty one would give every account a fresh grace period and
/// answer "not enrolled" for everyone.
fn lost_database(path: &Path, key_file: &Path) -> Error {
    Error::storage(format!(
        "no 2FA database at {}, but key file {} exists: the database was lost or --db / MB2FA_DB points to the wrong file; restore it from backup (nothing was created; to start over with an empty store: mb-2fa-store init)",
        path.display(),
        key_file.display()
    ))
}

fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-shm");
    PathBuf::from(name)
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
    key: Option<&'a MasterKey>,
    /// Records appended in this transaction, for syslog after commit.
    audit: RefCell<Vec<Record>>,
}

impl Tx<'_> {
    fn err(&self, e: rusqlite::Error) -> Error {
        db_error(self.path, &e)
    }

    fn key(&self) -> Result<&MasterKey> {
        self.key.ok_or_else(|| {
            Error::storage("internal error: the key was not loaded before touching a secret")
        })
    }

    /// Name the database in an error found in its contents.
    pub fn in_db(&self, e: &Error) -> Error {
        Error::new(
            e.kind(),
            format!("database {}: {}", self.path.display(), e.message()),
        )
    }

    fn damaged(&self, what: &str) -> Error {
        Error::storage(format!(
            "database {} holds an invalid {what}: it is damaged; restore it from backup",
            self.path.display()
        ))
    }

    /// A stored value outside what the tools ever write (a database writer's
    /// plant, a damaged page): exit 10 naming the field and the row, never
    /// a panic or an overflow further up.
    fn out_of_range(&self, field: &str, row: &str) -> Error {
        Error::storage(format!(
            "database {} holds an impossible {field} for {}: it is damaged or was altered; restore it from backup",
            self.path.display(),
            crate::text::escape_for_terminal(row)
        ))
    }

    /// `v` if it is a time the tools could have written (1970..=9999).
    fn time(&self, field: &str, row: &str, v: i64) -> Result<i64> {
        if (0..=crate::clock::MAX_TIME).contains(&v) {
            Ok(v)
        } else {
            Err(self.out_of_range(field, row))
        }
    }

    fn opt_time(&self, field: &str, row: &str, v: Option<i64>) -> Result<Option<i64>> {
        v.map(|t| self.time(field, row, t)).transpose()
    }

    /// A count of failures: never negative, never near overflow.
    fn count(&self, field: &str, row: &str, v: i64) -> Result<i64> {
        if (0..=MAX_STORED_COUNT).contains(&v) {
            Ok(v)
        } else {
            Err(self.out_of_range(field, row))
        }
    }

    fn drift(&self, row: &str, v: i64) -> Result<i64> {
        if v.unsigned_abs() > crate::skew::MAX_DRIFT.unsigned_abs() {
            return Err(self.out_of_range("accounts.drift_steps", row));
        }
        Ok(v)
    }

    fn checked_exemption(&self, e: Exemption) -> Result<Exemption> {
        let row = e.email.clone();
        Ok(Exemption {
            created_at: self.time("exemptions.created_at", &row, e.created_at)?,
            used_at: self.opt_time("exemptions.used_at", &row, e.used_at)?,
            sealed_at: self.opt_time("exemptions.sealed_at", &row, e.sealed_at)?,
            ..e
        })
    }

    pub fn account(&self, email: &str) -> Result<Option<Account>> {
        let row = self
            .tx
            .query_row(
                "SELECT id, email, state, secret, algorithm, digits, period, issuer, last_step, drift_steps,
                        created_at, failed_attempts, locked_until, recent_offsets
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
                        r.get::<_, i64>(10)?,
                        r.get::<_, i64>(11)?,
                        r.get::<_, Option<i64>>(12)?,
                        r.get::<_, String>(13)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((
            id,
            email,
            state,
            sealed,
            alg,
            digits,
            period,
            issuer,
            last_step,
            drift,
            created_at,
            failed_attempts,
            locked_until,
            recent,
        )) = row
        else {
            return Ok(None);
        };
        let drift = self.drift(&email, drift)?;
        let created_at = self.time("accounts.created_at", &email, created_at)?;
        let last_step = self.opt_time("accounts.last_step", &email, last_step)?;
        let failed_attempts = self.count("accounts.failed_attempts", &email, failed_attempts)?;
        let locked_until = self.opt_time("accounts.locked_until", &email, locked_until)?;
        let secret = crypto::open(self.key()?, &sealed, &email, created_at).map_err(|e| {
            Error::storage(format!("database {}: {}", self.path.display(), e.message()))
        })?;
        let state = State::parse(&state).ok_or_else(|| self.damaged("account state"))?;
        let algorithm = Algorithm::parse(&alg).ok_or_else(|| self.damaged("TOTP algorithm"))?;
        let params = TotpParams {
            algorithm,
            digits: u8::try_from(digits).map_err(|_| self.damaged("digit count"))?,
            period: u32::try_from(period).map_err(|_| self.damaged("period"))?,
        }
        .validated()
        .map_err(|_| self.damaged("set of TOTP parameters"))?;
        Ok(Some(Account {
            id,
            email,
            state,
            secret,
            params,
            issuer,
            created_at,
            last_step,
            drift_steps: drift,
            recent_offsets: crate::skew::parse_history(&recent),
            failed_attempts,
            locked_until,
        }))
    }

    /// Does the email have an enrollment, which one, and in which state?
    pub fn account_state(&self, email: &str) -> Result<Option<EnrollmentRef>> {
        let row = self
            .tx
            .query_row(
                "SELECT id, state, secret FROM accounts WHERE email = ?1",
                params![email],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match row {
            None => Ok(None),
            Some((id, s, sealed)) => Ok(Some(EnrollmentRef {
                id,
                state: State::parse(&s).ok_or_else(|| self.damaged("account state"))?,
                generation: Sha256::digest(&sealed).into(),
            })),
        }
    }

    /// Every account, in email order, without secrets. The query walks the
    /// unique index on `accounts.email` (no sort step) and counts the unused
    /// backup codes with the `backup_codes (account_id, tag)` index; see
    /// `summaries_plan`.
    const SUMMARIES_SQL: &'static str =
        "SELECT a.email, a.state, a.issuer, a.created_at, a.activated_at, a.last_used_at,
                (SELECT count(*) FROM backup_codes b WHERE b.account_id = a.id AND b.used_at IS NULL),
                a.drift_steps, a.locked_until, a.failed_attempts
         FROM accounts a ORDER BY a.email";

    /// Every account, collected. For many accounts prefer
    /// [`Tx::for_each_summary`], whose memory does not grow with them.
    pub fn summaries(&self) -> Result<Vec<AccountSummary>> {
        let mut out = Vec::new();
        self.for_each_summary(|s| {
            out.push(s);
            Ok(())
        })?;
        Ok(out)
    }

    /// Hand every account, in email order, to `each` as its row is read: one
    /// row in memory at a time. Stops at the first error, `each`'s or a
    /// damaged row's (the rows before it have been handed over already).
    pub fn for_each_summary(
        &self,
        mut each: impl FnMut(AccountSummary) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare(Self::SUMMARIES_SQL)
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let err = |e: rusqlite::Error| self.err(e);
        while let Some(r) = rows.next().map_err(err)? {
            let email: String = r.get(0).map_err(err)?;
            let state: String = r.get(1).map_err(err)?;
            let left: i64 = r.get(6).map_err(err)?;
            let summary = AccountSummary {
                state: State::parse(&state).ok_or_else(|| self.damaged("account state"))?,
                issuer: r.get(2).map_err(err)?,
                created_at: self.time("accounts.created_at", &email, r.get(3).map_err(err)?)?,
                activated_at: self.opt_time(
                    "accounts.activated_at",
                    &email,
                    r.get(4).map_err(err)?,
                )?,
                last_used_at: self.opt_time(
                    "accounts.last_used_at",
                    &email,
                    r.get(5).map_err(err)?,
                )?,
                backup_codes_left: u32::try_from(left).unwrap_or(0),
                drift_steps: self.drift(&email, r.get(7).map_err(err)?)?,
                locked_until: self.opt_time(
                    "accounts.locked_until",
                    &email,
                    r.get(8).map_err(err)?,
                )?,
                failed_attempts: self.count(
                    "accounts.failed_attempts",
                    &email,
                    r.get(9).map_err(err)?,
                )?,
                email,
            };
            each(summary)?;
        }
        Ok(())
    }

    /// `EXPLAIN QUERY PLAN` of the summaries query, one detail per line.
    #[cfg(test)]
    pub(crate) fn summaries_plan(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare(&format!("EXPLAIN QUERY PLAN {}", Self::SUMMARIES_SQL))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn insert_account(&self, a: &NewAccount<'_>) -> Result<i64> {
        let sealed = crypto::seal(self.key()?, a.secret, a.email, a.created_at)?;
        self.tx
            .execute(
                "INSERT INTO accounts (email, state, secret, algorithm, digits, period, issuer, created_at)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    a.email,
                    sealed,
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

    /// Record an accepted TOTP step with the drift learned from it; activate
    /// a pending enrollment; clear the failure count.
    pub fn record_totp_success(
        &self,
        id: i64,
        step: i64,
        now: i64,
        drift: i64,
        recent_offsets: &[i64],
    ) -> Result<()> {
        self.tx
            .execute(
                "UPDATE accounts SET
                    last_step = ?2,
                    last_used_at = ?3,
                    drift_steps = ?4,
                    recent_offsets = ?5,
                    failed_attempts = 0,
                    locked_until = NULL,
                    activated_at = CASE WHEN state = 'pending' THEN ?3 ELSE activated_at END,
                    state = 'active'
                 WHERE id = ?1",
                params![
                    id,
                    step,
                    now,
                    drift,
                    crate::skew::format_history(recent_offsets)
                ],
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

    /// Spend a backup code. False if it was spent or replaced meanwhile:
    /// the `used_at IS NULL` guard makes the spend happen at most once, and
    /// the `hash` (salted, unique to one code of one batch) binds it to the
    /// code that was checked, even if a new batch reused the row id.
    pub fn spend_backup_code(
        &self,
        account_id: i64,
        code: &StoredBackupCode,
        now: i64,
    ) -> Result<bool> {
        let n = self
            .tx
            .execute(
                "UPDATE backup_codes SET used_at = ?3
                 WHERE id = ?1 AND account_id = ?2 AND hash = ?4 AND used_at IS NULL",
                params![code.id, account_id, now, code.hash],
            )
            .map_err(|e| self.err(e))?;
        if n == 1 {
            self.tx
                .execute(
                    "UPDATE accounts SET last_used_at = ?2, failed_attempts = 0, locked_until = NULL WHERE id = ?1",
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

    /// The failure count and lock of an account, bounded like every stored
    /// value (exit 10 naming the field).
    pub fn lock(&self, account_id: i64) -> Result<Lock> {
        let (email, failed, until) = self.raw_lock(account_id)?;
        Ok(Lock {
            failed_attempts: self.count("accounts.failed_attempts", &email, failed)?,
            locked_until: self.opt_time("accounts.locked_until", &email, until)?,
        })
    }

    /// [`Tx::lock`] for `mb-2fa-unlock`, which must be able to clear even an
    /// impossible (planted) lock: out-of-range values are clamped for the
    /// report instead of refused.
    pub fn lock_to_clear(&self, account_id: i64) -> Result<Lock> {
        let (_, failed, until) = self.raw_lock(account_id)?;
        Ok(Lock {
            failed_attempts: failed.clamp(0, MAX_STORED_COUNT),
            locked_until: until.map(|t| t.clamp(0, crate::clock::MAX_TIME)),
        })
    }

    fn raw_lock(&self, account_id: i64) -> Result<(String, i64, Option<i64>)> {
        self.tx
            .query_row(
                "SELECT email, failed_attempts, locked_until FROM accounts WHERE id = ?1",
                params![account_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Count one more consecutive failure and lock the account when the
    /// count reaches the threshold. Returns the new lock state.
    pub fn record_failure(&self, account_id: i64, now: i64) -> Result<Lock> {
        let failed = self.lock(account_id)?.failed_attempts.saturating_add(1);
        let locked_until = throttle::lock_seconds(failed).map(|s| now.saturating_add(s));
        self.tx
            .execute(
                "UPDATE accounts SET failed_attempts = ?2, locked_until = COALESCE(?3, locked_until) WHERE id = ?1",
                params![account_id, failed, locked_until],
            )
            .map_err(|e| self.err(e))?;
        self.lock(account_id)
    }

    /// Clear the failure count and any lock (`mb-2fa-unlock`).
    pub fn clear_lock(&self, account_id: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE accounts SET failed_attempts = 0, locked_until = NULL WHERE id = ?1",
                params![account_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Append an audit record (and queue it for syslog after commit).
    pub fn append_audit(&self, r: Record) -> Result<()> {
        insert_audit(&self.tx, &r).map_err(|e| self.err(e))?;
        self.audit.borrow_mut().push(r);
        Ok(())
    }

    /// Audit records, newest first.
    pub fn audit_records(
        &self,
        email: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let mut stmt = self
            .tx
            .prepare(
                "SELECT at, tool, action, email, outcome, actor, detail FROM audit
                 WHERE (?1 IS NULL OR email = ?1) AND (?2 IS NULL OR at >= ?2)
                 ORDER BY at DESC, id DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![email, since, limit], |r| {
                Ok(Record {
                    at: r.get(0)?,
                    tool: r.get(1)?,
                    action: r.get(2)?,
                    email: r.get(3)?,
                    outcome: r.get(4)?,
                    actor: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|r| {
                let row = r
                    .email
                    .clone()
                    .unwrap_or_else(|| "an audit record".to_string());
                self.time("audit.at", &row, r.at).map(|_| r)
            })
            .collect()
    }

    pub fn exemption(&self, email: &str) -> Result<Option<Exemption>> {
        self.tx
            .query_row(
                "SELECT email, kind, reason, created_at, created_by, used_at, sealed_at
                 FROM exemptions WHERE email = ?1",
                params![email],
                exemption_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .map(|e| self.checked_exemption(e))
            .transpose()
    }

    pub fn exemptions(&self) -> Result<Vec<Exemption>> {
        let mut stmt = self
            .tx
            .prepare(
                "SELECT email, kind, reason, created_at, created_by, used_at, sealed_at
                 FROM exemptions ORDER BY email",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], exemption_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|e| self.checked_exemption(e))
            .collect()
    }

    /// Add or replace an exemption (a new one starts unused and sealed).
    pub fn put_exemption(&self, e: &Exemption) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO exemptions (email, kind, reason, created_at, created_by, used_at, sealed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?4)
                 ON CONFLICT (email) DO UPDATE SET kind = excluded.kind, reason = excluded.reason,
                    created_at = excluded.created_at, created_by = excluded.created_by,
                    used_at = NULL, sealed_at = excluded.created_at",
                params![e.email, e.kind, e.reason, e.created_at, e.created_by],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_exemption(&self, email: &str) -> Result<bool> {
        let n = self
            .tx
            .execute("DELETE FROM exemptions WHERE email = ?1", params![email])
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Mark a break-glass account used (keeps the first use since the seal).
    pub fn mark_used(&self, email: &str, now: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE exemptions SET used_at = COALESCE(used_at, ?2) WHERE email = ?1",
                params![email, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn seal(&self, email: &str, now: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE exemptions SET used_at = NULL, sealed_at = ?2 WHERE email = ?1",
                params![email, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// When `check` first saw `email`, recording `now` if this is the first time.
    pub fn first_seen(&self, email: &str, now: i64) -> Result<i64> {
        self.tx
            .execute(
                "INSERT INTO first_seen (email, seen_at) VALUES (?1, ?2) ON CONFLICT (email) DO NOTHING",
                params![email, now],
            )
            .map_err(|e| self.err(e))?;
        self.tx
            .query_row(
                "SELECT seen_at FROM first_seen WHERE email = ?1",
                params![email],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
            .and_then(|t| self.time("first_seen.seen_at", email, t))
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
        let mut store = Store::open(&path, OpenMode::Init).expect("open");
        assert_eq!(
            Store::user_version(&store.conn, &path).expect("v"),
            SCHEMA_VERSION
        );
        store.unlock(&tmp.path().join("2fa.key")).expect("key");
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
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).expect("chmod");
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
        std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o600)).expect("chmod");
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
    fn only_init_and_a_fresh_first_enrollment_create_a_database() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.db");
        let key = tmp.path().join("2fa.key");
        std::fs::write(&key, [0u8; 32]).expect("key");
        let err = Store::open(&path, OpenMode::CreateIfFresh { key_file: &key })
            .expect_err("key without database");
        assert_eq!(err.exit_code(), 10);
        assert!(err.message().contains("was lost"), "{}", err.message());
        assert!(!path.exists(), "nothing created");
        std::fs::remove_file(&key).expect("rm");
        drop(Store::open(&path, OpenMode::CreateIfFresh { key_file: &key }).expect("fresh"));
        let err = Store::open(&path, OpenMode::Init).expect_err("init twice");
        assert!(
            err.message().contains("already exists"),
            "{}",
            err.message()
        );

        // A valid SQLite file without our schema is foreign, not "empty".
        let blank = tmp.path().join("blank.db");
        Connection::open(&blank)
            .expect("open")
            .execute_batch("PRAGMA page_size=4096; VACUUM;")
            .expect("vacuum");
        std::fs::set_permissions(&blank, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = Store::open(&blank, OpenMode::MustExist).expect_err("blank");
        assert_eq!(err.exit_code(), 10);
        assert!(
            err.message().contains("not an initialised mb-2fa database"),
            "{}",
            err.message()
        );
        let left = tmp.path().read_dir().expect("ls").count();
        assert_eq!(
            left, 4,
            "no temporary file left behind (db, wal, shm, blank)"
        );
    }

    #[test]
    fn failed_write_rolls_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.db");
        let mut store = Store::open(&path, OpenMode::Init).expect("open");
        store.unlock(&tmp.path().join("2fa.key")).expect("key");
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
        assert_eq!(r.map_err(|e| e.kind()), Err(crate::ErrorKind::Conflict));
        let found = store.read(|tx| tx.account_state("a@b")).expect("read");
        assert_eq!(found, None);
    }

    #[test]
    fn audit_trail_is_append_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.db");
        let mut store = Store::open(&path, OpenMode::Init).expect("open");
        store
            .write(|tx| {
                tx.append_audit(Record {
                    at: 1,
                    tool: "t".into(),
                    action: "a".into(),
                    email: None,
                    outcome: "ok".into(),
                    actor: "me".into(),
                    detail: String::new(),
                })
            })
            .expect("append");
        for sql in ["UPDATE audit SET outcome = 'x'", "DELETE FROM audit"] {
            let err = store.conn.execute(sql, []).expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{err}");
        }
    }

    #[test]
    fn version_1_fixture_is_sealed_only_by_seal_plaintext() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.db");
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/schema-v1/2fa.db"
        );
        std::fs::copy(fixture, &path).expect("copy fixture");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let plain: Vec<Vec<u8>> = {
            let c = Connection::open(&path).expect("open");
            let v: i64 = c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("v");
            assert_eq!(v, 1, "the fixture is a version 1 database");
            let mut st = c
                .prepare("SELECT secret FROM accounts ORDER BY email")
                .expect("prep");
            st.query_map([], |r| r.get(0))
                .expect("q")
                .collect::<rusqlite::Result<_>>()
                .expect("rows")
        };
        assert_eq!(plain.len(), 3);
        // A keyless tool migrates the schema; the secrets stay as they were.
        drop(Store::open(&path, OpenMode::MustExist).expect("open"));
        {
            let c = Connection::open(&path).expect("open");
            let v: i64 = c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("v");
            assert_eq!(v, SCHEMA_VERSION);
            let first: Vec<u8> = c
                .query_row(
                    "SELECT secret FROM accounts ORDER BY email LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .expect("row");
            assert_eq!(first, plain[0], "still plaintext before the key is loaded");
        }
        let key = tmp.path().join("2fa.key");
        let mut store = Store::open(&path, OpenMode::MustExist).expect("open");
        let err = store.unlock(&key).expect_err("unlock never seals");
        assert_eq!(err.exit_code(), 10);
        assert!(
            err.message().contains("seal-plaintext"),
            "{}",
            err.message()
        );
        assert!(!key.exists(), "a refused unlock creates no key");
        let record = |n: usize| Record {
            at: 1,
            tool: "mb-2fa-store".into(),
            action: "seal-plaintext".into(),
            email: None,
            outcome: "ok".into(),
            actor: "test".into(),
            detail: format!("{n} secrets sealed"),
        };
        assert_eq!(store.seal_plaintext(&key, record).expect("seal"), 3);
        let again = store.seal_plaintext(&key, record).expect_err("only once");
        assert!(
            again.message().contains("already records key"),
            "{}",
            again.message()
        );
        let mut store = Store::open(&path, OpenMode::MustExist).expect("open");
        store.unlock(&key).expect("the recorded key opens it");
        assert_eq!(
            Store::user_version(&store.conn, &path).expect("v"),
            SCHEMA_VERSION
        );
        let emails = ["alice@example.com", "bob@example.com", "carol@example.com"];
        for (email, plain) in emails.iter().zip(&plain) {
            let account = store
                .read(|tx| tx.account(email))
                .expect("read")
                .expect("present");
            assert_eq!(account.secret.as_bytes(), plain.as_slice(), "{email}");
        }
        let stored: Vec<Vec<u8>> = {
            let mut st = store
                .conn
                .prepare("SELECT secret FROM accounts")
                .expect("prep");
            st.query_map([], |r| r.get(0))
                .expect("q")
                .collect::<rusqlite::Result<_>>()
                .expect("rows")
        };
        for (s, p) in stored.iter().zip(&plain) {
            assert!(!s.windows(p.len()).any(|w| w == p.as_slice()), "sealed");
        }
    }
}
