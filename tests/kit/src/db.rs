//! The database files as bytes, to prove a run changed nothing, and the
//! database opened directly, to look at (or tamper with) what the tools
//! stored.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// The bytes of a database file and of its write-ahead log, if any.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSnapshot {
    pub db: Option<Vec<u8>>,
    pub wal: Option<Vec<u8>>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl fmt::Debug for DbSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &Option<Vec<u8>>| match b {
            None => "absent".to_string(),
            Some(b) => format!("{} bytes, fnv {:016x}", b.len(), fnv(b)),
        };
        write!(f, "db: {}, wal: {}", show(&self.db), show(&self.wal))
    }
}

/// Snapshot `path` and `path-wal` to prove later that a command left the
/// database byte-for-byte unchanged. (The shared-memory index `-shm` is not
/// content and is not compared.)
pub fn db_bytes(path: &Path) -> DbSnapshot {
    let read = |p: &Path| std::fs::read(p).ok();
    DbSnapshot {
        db: read(path),
        wal: read(&with_suffix(path, "-wal")),
    }
}

/// `path` with `suffix` appended to its file name (`2fa.db` → `2fa.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// Open the database `db` directly, as the tools would find it: read-write
/// (SQLite may need to replay its WAL), waiting up to 10 s for a writer, and
/// without the checkpoint on close that would change the files tests
/// compare byte for byte (the tools too turn it off).
pub fn open(db: &Path) -> Connection {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .expect("no checkpoint on close");
    conn
}

/// `PRAGMA user_version`: the schema version the tools recorded.
pub fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("PRAGMA user_version")
}
