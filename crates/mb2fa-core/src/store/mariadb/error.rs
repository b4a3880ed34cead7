//! MariaDB errors as one-line exit-10 messages that name the store and the
//! cure; certification conflicts and deadlocks as transient errors.

use super::LOCK_WAIT_SECS;
use crate::error::Error;
use crate::store::location::{Endpoint, MariadbTarget};

/// ER_NO_SUCH_TABLE.
pub(super) const NO_SUCH_TABLE: u16 = 1146;
/// ER_LOCK_DEADLOCK: a deadlock, or a Galera certification failure.
const DEADLOCK: u16 = 1213;
/// ER_LOCK_WAIT_TIMEOUT.
const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// ER_DUP_ENTRY.
pub(super) const DUPLICATE: u16 = 1062;

/// Names the store in the errors of one connection.
pub(super) struct ErrorContext<'a> {
    name: &'a str,
}

impl<'a> ErrorContext<'a> {
    pub(super) fn new(name: &'a str) -> Self {
        ErrorContext { name }
    }

    pub(super) fn error(&self, e: &mysql::Error) -> Error {
        db_error(self.name, e)
    }
}

/// An error on an open connection.
pub(super) fn db_error(name: &str, e: &mysql::Error) -> Error {
    match e {
        mysql::Error::MySqlError(m) => match m.code {
            DEADLOCK => Error::transient(format!(
                "{name}: a concurrent change on another connection or cluster node conflicted with this one, and the retries ran out; try again"
            )),
            LOCK_WAIT_TIMEOUT => Error::storage(format!(
                "{name} is busy: another mb-2fa process held the account for more than {LOCK_WAIT_SECS} s; try again"
            )),
            NO_SUCH_TABLE => Error::storage(format!(
                "{name}: a table of the store is missing ({}): the schema is damaged or was dropped; restore it from backup (mb-2fa-store check)",
                clean(&m.message)
            )),
            1047 | 1927 => Error::storage(format!(
                "{name}: this Galera node is not part of the primary component (it lost the cluster); point this node at a healthy one or wait for the cluster to recover"
            )),
            1142 | 1143 | 1227 | 1044 => Error::storage(format!(
                "{name}: permission denied ({}): grant the mb-2fa database user its privileges (README, Clusters)",
                clean(&m.message)
            )),
            code => Error::storage(format!(
                "{name}: server error {code}: {}",
                clean(&m.message)
            )),
        },
        mysql::Error::IoError(io) => Error::storage(format!(
            "{name}: the connection to the server failed ({io}): is the server up?"
        )),
        mysql::Error::CodecError(c) => Error::storage(format!(
            "{name}: the connection to the server failed ({c}): is the server up?"
        )),
        mysql::Error::DriverError(d) => Error::storage(format!("{name}: {d}")),
        mysql::Error::TlsError(t) => Error::storage(format!("{name}: TLS failed: {t}")),
        mysql::Error::UrlError(u) => Error::storage(format!("{name}: {u}")),
        mysql::Error::FromValueError(_) | mysql::Error::FromRowError(_) => Error::storage(format!(
            "{name}: a stored value has the wrong type: the schema was altered; restore it from backup"
        )),
    }
}

/// An error while connecting: which server, and what to check.
pub(super) fn connect_error(name: &str, target: &MariadbTarget, e: &mysql::Error) -> Error {
    let server = match &target.endpoint {
        Endpoint::Socket(s) => format!("the socket {}", s.display()),
        Endpoint::Tcp { host, port } => format!("{host}:{port}"),
    };
    match e {
        mysql::Error::MySqlError(m) if m.code == 1045 || m.code == 1698 => {
            let how = if target.password_file.is_some() {
                "check the password in password_file and the account's grants"
            } else {
                "no password_file was given: without one only unix_socket authentication (root over the local socket) can work"
            };
            Error::storage(format!(
                "{name}: access denied for user {} at {server}: {how}",
                target.user
            ))
        }
        mysql::Error::MySqlError(m) if m.code == 1049 => Error::storage(format!(
            "{name}: the server at {server} has no database {}: create it (CREATE DATABASE {} CHARACTER SET utf8mb4) or fix the URL",
            target.database, target.database
        )),
        mysql::Error::MySqlError(m) if m.code == 1044 => Error::storage(format!(
            "{name}: user {} may not use database {}: grant it (README, Clusters)",
            target.user, target.database
        )),
        mysql::Error::IoError(io) => Error::storage(format!(
            "{name}: cannot connect to the MariaDB server at {server} ({io}): is it running, and is this the right address?"
        )),
        mysql::Error::DriverError(d) => Error::storage(format!(
            "{name}: cannot connect to the MariaDB server at {server}: {d}"
        )),
        mysql::Error::TlsError(t) => Error::storage(format!(
            "{name}: TLS to {server} failed ({t}): check tls_ca and the server's certificate"
        )),
        other => db_error(name, other).prefixed(&format!("connecting to {server}")),
    }
}

/// A server message as it may appear in ours: one line, no control characters.
fn clean(s: &str) -> String {
    crate::text::escape_for_terminal(s.lines().next().unwrap_or("")).into_owned()
}
