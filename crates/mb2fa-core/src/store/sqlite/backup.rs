//! `mb-2fa-store backup FILE` on SQLite: a consistent copy of the database
//! while other tools run, through SQLite's online backup API.
//!
//! - One snapshot: the whole database is copied in one backup step, inside
//!   one read transaction of the source. In WAL mode a reader blocks no
//!   writer, so logins go on meanwhile; what they commit after the step
//!   began is not in the copy, and the copy includes everything committed
//!   before it, also what still lives only in `2fa.db-wal` (which is why a
//!   `cp` of `2fa.db` alone is no backup).
//! - Never a half file under FILE: the copy is written into a new private
//!   temporary file (0600, `O_EXCL`) in FILE's directory, switched to a
//!   rollback journal (so it is one self-contained file, no `-wal`),
//!   fsynced, opened again and checked (`PRAGMA integrity_check`, this
//!   build's schema version), and only then linked to FILE without
//!   replacing anything (`link`, which neither overwrites nor follows a
//!   symlink planted at FILE meanwhile); then the directory is fsynced. A
//!   backup killed on the way leaves at most a hidden `.mb-2fa-backup-*`
//!   file beside FILE, never FILE.
//! - The key file is not in it: the copy holds sealed secrets only.

use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::error::db_error;
use super::{BUSY_TIMEOUT, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::secure_open;
use crate::store::BackupSummary;

/// Copy the database open on `source` (at `source_path`, its real path)
/// into a new file `file`. See the module comment for the steps.
pub(super) fn backup(
    source: &Connection,
    source_path: &Path,
    file: &Path,
) -> Result<BackupSummary> {
    let f = file.display();
    let dir = secure_open::parent_dir(file);
    if is_the_store(source_path, file) {
        return Err(Error::usage(format!(
            "{f} is the store itself ({}): name a new file for the backup, e.g. /root/2fa-backup-$(date +%F).db",
            source_path.display()
        )));
    }
    let cannot = |e: std::io::Error| {
        Error::storage(format!(
            "cannot write backup {f}: {e}; check the directory {} (free space, owner, mode)",
            dir.display()
        ))
    };
    let tmp = tempfile::Builder::new()
        .prefix(".mb-2fa-backup-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(cannot)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    {
        let mut dest =
            Connection::open_with_flags(tmp.path(), flags).map_err(|e| db_error(file, &e))?;
        copy_all(source, source_path, &mut dest, file)?;
        // The copy's header says WAL, as the source's does: make it one
        // self-contained file with a rollback journal, so a restore is one
        // file and the check below needs no -wal/-shm beside it.
        let mode: String = dest
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .map_err(|e| db_error(file, &e))?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(Error::storage(format!(
                "backup {f}: SQLite kept journal mode {mode}, not delete; nothing was written under {f}"
            )));
        }
        dest.close().map_err(|(_, e)| db_error(file, &e))?;
    }
    tmp.as_file().sync_all().map_err(cannot)?;
    let summary = check_copy(tmp.path(), file)?;
    match tmp.persist_noclobber(file) {
        Ok(_) => {}
        Err(e) if e.error.kind() == IoErrorKind::AlreadyExists => {
            return Err(exists(file));
        }
        Err(e) => return Err(cannot(e.error)),
    }
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(cannot)?;
    Ok(summary)
}

/// The one message for a FILE that is already there.
pub(crate) fn exists(file: &Path) -> Error {
    Error::conflict(format!(
        "{} already exists: a backup never replaces a file; name a new one (or remove the old one first)",
        file.display()
    ))
}

/// Whether `file` names the database at `source` or one of its -wal/-shm
/// files (by real path or by inode: a hard link is the store too).
pub(crate) fn is_the_store(source: &Path, file: &Path) -> bool {
    let real = |p: &Path| match (secure_open::parent_dir(p).canonicalize(), p.file_name()) {
        (Ok(d), Some(name)) => Some(d.join(name)),
        _ => None,
    };
    let Some(target) = real(file) else {
        return false;
    };
    let source = real(source).unwrap_or_else(|| source.to_path_buf());
    let source = source.as_path();
    let same_inode = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    };
    [
        source.to_path_buf(),
        super::wal_path(source),
        super::shm_path(source),
    ]
    .iter()
    .any(|p| *p == target || same_inode(p, file))
}

/// Every page of the source in one step (one read transaction: one
/// snapshot), waiting out a busy or locked source for up to
/// [`BUSY_TIMEOUT`]. Copying in small steps would let writers in between,
/// and SQLite restarts a backup from the start whenever another process
/// writes the source: in a burst of logins it might never finish.
fn copy_all(
    source: &Connection,
    source_path: &Path,
    dest: &mut Connection,
    file: &Path,
) -> Result<()> {
    let backup = Backup::new(source, dest).map_err(|e| db_error(file, &e))?;
    let started = Instant::now();
    let mut waits = 0u64;
    loop {
        match backup.step(-1).map_err(|e| db_error(source_path, &e))? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if started.elapsed() < BUSY_TIMEOUT => {
                waits += 1;
                std::thread::sleep(Duration::from_micros(500 + (waits * 977) % 4000));
            }
            _ => {
                return Err(Error::storage(format!(
                    "database {} stayed busy for more than {} s: the backup was not made; try again",
                    source_path.display(),
                    BUSY_TIMEOUT.as_secs()
                )));
            }
        }
    }
}

/// Open the finished copy afresh, read-only, and check it as a restore
/// would need it: SQLite's full integrity check and this build's schema.
fn check_copy(copy: &Path, file: &Path) -> Result<BackupSummary> {
    let f = file.display();
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(copy, flags).map_err(|e| db_error(file, &e))?;
    let err = |e: rusqlite::Error| db_error(file, &e);
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(err)?;
    if integrity != "ok" {
        return Err(Error::storage(format!(
            "the copy failed SQLite's integrity check ({}): nothing was written under {f}; check the database with mb-2fa-store check",
            crate::text::escape_for_terminal(&integrity)
        )));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    if version != SCHEMA_VERSION {
        return Err(Error::storage(format!(
            "the copy has schema version {version}, not {SCHEMA_VERSION}: nothing was written under {f}"
        )));
    }
    let accounts: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .map_err(err)?;
    let bytes = std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0);
    conn.close().map_err(|(_, e)| err(e))?;
    Ok(BackupSummary {
        accounts: u64::try_from(accounts).unwrap_or(0),
        schema_version: version,
        integrity: "ok".to_string(),
        bytes,
    })
}
