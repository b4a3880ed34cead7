//! The SQLite backend: one database file per appliance. The only code in
//! mb-2fa that names `rusqlite`.
//!
//! - WAL, so `mb-2fa-list` never blocks a login; `synchronous=FULL`, so an
//!   accepted code survives a power cut (a lost "last step" would allow replay).
//! - A busy handler, so concurrent tools queue instead of failing.
//! - A write transaction is `BEGIN IMMEDIATE`: the database's write lock is
//!   taken before the first read, so every read of a write transaction is a
//!   read for update ([`Intent::Update`](super::Intent::Update)) and two
//!   verifications of one code serialise.
//! - Forward-only numbered migrations recorded in `PRAGMA user_version`.
//! - The files are checked like the key file (owner, mode, no symlink).

mod backup;
mod error;
#[cfg(test)]
mod tests;
mod tx;

pub(crate) use backup::{exists as backup_exists, is_the_store};

use std::fs::DirBuilder;
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction as SqlTransaction, TransactionBehavior};

use super::{Access, Backend, OpenMode, Transaction};
use crate::error::{Error, Result};
use crate::key_file;
use crate::secure_open;
use error::db_error;

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
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_audit.sql"),
    include_str!("../../../migrations/0003_skew.sql"),
    include_str!("../../../migrations/0004_policy.sql"),
    include_str!("../../../migrations/0005_node.sql"),
    include_str!("../../../migrations/0006_backup_codes_unused.sql"),
    include_str!("../../../migrations/0007_via.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open SQLite database.
#[derive(Debug)]
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    /// Checkpoint only when the WAL is long (`tune_for_logins`).
    deferred_checkpoints: bool,
    /// How long the busy handler waits for a lock, in milliseconds.
    lock_wait_ms: Arc<AtomicU64>,
}

impl Sqlite {
    pub fn open(path: &Path, mode: OpenMode<'_>) -> Result<Sqlite> {
        let p = path.display();
        let dir = secure_open::parent_dir(path);
        match mode {
            OpenMode::MustExist => {}
            OpenMode::CopyTarget => {
                if std::fs::symlink_metadata(path).is_err() {
                    make_dir(&dir)?;
                    secure_open::check_dir(&dir, secure_open::DATABASE)?;
                    create_initialised(path)?;
                }
            }
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
                // The key first: a first enrollment makes the database before
                // the key, so a key seen here means its database was there
                // already (else a racing first enrollment could be taken for
                // a lost database).
                let key_there = std::fs::symlink_metadata(key_file).is_ok();
                if std::fs::symlink_metadata(path).is_err() {
                    if key_there {
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
        let mut store = Sqlite {
            conn,
            path: path.to_path_buf(),
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

    /// Copy the WAL into the database file and truncate it: at once after an
    /// admin change (so the database file alone holds every enrollment), and
    /// on the hot path only when the WAL has grown. Failure is not an error:
    /// the commit is already durable in the WAL, and the next write retries.
    fn checkpoint(&self) {
        checkpoint(&self.conn, &self.lock_wait_ms);
    }
}

/// Copy the WAL into the database file and truncate it, if no other
/// process is in the way for [`CHECKPOINT_WAIT`].
fn checkpoint(conn: &Connection, lock_wait_ms: &AtomicU64) {
    set_wait(lock_wait_ms, CHECKPOINT_WAIT);
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    set_wait(lock_wait_ms, BUSY_TIMEOUT);
}

impl Backend for Sqlite {
    fn describe(&self) -> String {
        format!("database {}", self.path.display())
    }

    fn begin(&mut self, access: Access) -> Result<Box<dyn Transaction + '_>> {
        let behavior = match access {
            Access::Read => TransactionBehavior::Deferred,
            Access::Write => TransactionBehavior::Immediate,
        };
        let tx = SqlTransaction::new_unchecked(&self.conn, behavior)
            .map_err(|e| db_error(&self.path, &e))?;
        Ok(Box::new(tx::SqliteTx {
            tx,
            conn: &self.conn,
            path: &self.path,
            after_commit: match access {
                Access::Read => tx::AfterCommit::Nothing,
                Access::Write if self.deferred_checkpoints => tx::AfterCommit::CheckpointIfLong,
                Access::Write => tx::AfterCommit::Checkpoint,
            },
            lock_wait_ms: &self.lock_wait_ms,
        }))
    }

    fn schema_version(&mut self) -> Result<i64> {
        Self::user_version(&self.conn, &self.path)
    }

    fn supported_schema_version(&self) -> i64 {
        SCHEMA_VERSION
    }

    /// SQLite's `PRAGMA quick_check`.
    fn integrity_check(&mut self) -> Result<std::result::Result<String, String>> {
        let first: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| db_error(&self.path, &e))?;
        Ok(if first == "ok" {
            Ok("SQLite quick_check: ok".to_string())
        } else {
            Err(format!("SQLite quick_check: {first}"))
        })
    }

    /// After a write, copy the WAL into the database file only once it
    /// passes [`WAL_CHECKPOINT_BYTES`], not every time. Until then the
    /// newest changes live in `2fa.db-wal` (as durable as in the database
    /// file: the commit synced them), which is why backups must use SQLite's
    /// backup API, not `cp` of one file.
    fn tune_for_logins(&mut self) {
        self.deferred_checkpoints = true;
    }

    fn flush(&mut self) {
        self.checkpoint();
    }

    /// Through SQLite's online backup API (`backup.rs`).
    fn backup_to(&mut self, file: &Path) -> Result<super::BackupSummary> {
        backup::backup(&self.conn, &self.path, file)
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

pub(super) fn set_wait(limit_ms: &AtomicU64, wait: Duration) {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    limit_ms.store(ms, Ordering::Relaxed);
}

/// Where SQLite keeps the write-ahead log of the database at `db`.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
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
