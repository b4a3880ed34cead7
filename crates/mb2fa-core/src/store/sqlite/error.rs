//! SQLite errors as one-line exit-10 messages that name the file and the cure.

use std::path::Path;

use super::BUSY_TIMEOUT;
use crate::error::Error;

/// Turn an SQLite error into a one-line exit-10 message naming the file and
/// the cure.
pub(super) fn db_error(path: &Path, e: &rusqlite::Error) -> Error {
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
            "database {p} is corrupt: restore it from backup (check it with: mb-2fa-store check)"
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
