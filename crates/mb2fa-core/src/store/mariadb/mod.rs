//! The MariaDB backend: one database shared by every node of a cluster
//! (a single server, primary-replica, or Galera). The only code in mb-2fa
//! that names the `mysql` crate.
//!
//! - One connection per tool run, no pool: a tool runs one or two
//!   transactions and exits.
//! - Write transactions run at `READ COMMITTED`: every plain read sees the
//!   newest committed row, and every read that judges (an account, its
//!   lock, a backup code, an exemption) is a locking read (`FOR UPDATE`),
//!   so two verifications on one server serialise on the account row. A
//!   backup code is spent by a conditional `UPDATE` whose affected-row
//!   count is the verdict.
//! - On Galera, locks are per node: two nodes judging one account at once
//!   both commit locally, and certification lets only the first through; the
//!   other fails at `COMMIT` with 1213. That error (and a deadlock) is
//!   [`Error::transient`]: `Store` runs the whole operation again in a new
//!   transaction, which then sees the winner's write (a replay is rejected,
//!   a wrong code is still counted).
//! - On a Galera node every session sets `wsrep_sync_wait = 1`, so a read
//!   (and the start of a transaction) waits until the node has applied
//!   everything committed anywhere before it: an enrollment made on node A
//!   verifies on node B at once.
//! - Read transactions run at `REPEATABLE READ WITH CONSISTENT SNAPSHOT`:
//!   one snapshot, as on SQLite.

mod error;
pub mod schema;
mod tx;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, SslOpts};
use zeroize::Zeroizing;

use super::location::{Endpoint, MariadbTarget};
use super::{Access, Backend, OpenMode, Transaction};
use crate::error::{Error, Result};
use crate::key_file;
use crate::secure_open;
use error::ErrorContext;
use schema::{MIGRATIONS, SCHEMA_TABLE, SCHEMA_VERSION, TABLES};

/// How long a tool waits for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a tool waits for any one reply: a server that stopped
/// answering is exit 10, not a login that hangs.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a transaction waits for another one's row lock (seconds).
pub const LOCK_WAIT_SECS: u64 = 5;

/// An open connection to the store's database.
pub struct Mariadb {
    conn: Conn,
    name: String,
    /// Whether the server is a Galera node (`wsrep_on`).
    galera: bool,
}

impl std::fmt::Debug for Mariadb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mariadb").field("name", &self.name).finish()
    }
}

impl Mariadb {
    pub fn open(target: &MariadbTarget, mode: OpenMode<'_>) -> Result<Mariadb> {
        let name = format!("MariaDB store {target}");
        let mut conn = connect(target, &name)?;
        let ctx = ErrorContext::new(&name);
        // One round trip: what the server is, and the session's settings.
        let galera: Option<String> = conn.query_first("SELECT @@global.wsrep_on").unwrap_or(None);
        let galera = galera.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"));
        let mut session = format!(
            "SET SESSION time_zone = '+00:00', SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECS}, \
             SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY', \
             SESSION tx_isolation = 'READ-COMMITTED'"
        );
        if galera {
            session.push_str(", SESSION wsrep_sync_wait = 1");
        }
        conn.query_drop(session).map_err(|e| ctx.error(&e))?;
        let mut store = Mariadb { conn, name, galera };
        let version = store.recorded_version()?;
        match (mode, version) {
            (OpenMode::Init, Some(_)) => {
                return Err(Error::storage(format!(
                    "{} already holds an mb-2fa store: nothing was changed (check it with mb-2fa-store check)",
                    store.name
                )));
            }
            (OpenMode::Init | OpenMode::CopyTarget, None) => store.migrate(None)?,
            (OpenMode::CreateIfFresh { key_file }, None) => {
                if std::fs::symlink_metadata(key_file).is_ok() {
                    return Err(Error::storage(format!(
                        "{} holds no mb-2fa store, but key file {} exists: the store was lost, or --db / MB2FA_DB / the config file names the wrong database; restore it from backup (nothing was created; to start over with an empty store: mb-2fa-store init)",
                        store.name,
                        key_file.display()
                    )));
                }
                key_file::check_can_create(key_file)?;
                store.migrate(None)?;
            }
            (OpenMode::MustExist, None) => {
                return Err(Error::storage(format!(
                    "{} holds no mb-2fa store (no {SCHEMA_TABLE} table): on a new cluster enroll the first account with mb-2fa-enable or run mb-2fa-store init; else --db / MB2FA_DB / the config file names the wrong database, or the store was lost (restore it from backup)",
                    store.name
                )));
            }
            (_, Some(v)) => {
                check_not_newer(v, &store.name)?;
                if v < SCHEMA_VERSION {
                    store.migrate(Some(v))?;
                }
            }
        }
        Ok(store)
    }

    /// The newest version in `mb2fa_schema`; `None` if the table is absent
    /// or empty (not an mb-2fa store, or one whose creation was cut short).
    fn recorded_version(&mut self) -> Result<Option<i64>> {
        let ctx = ErrorContext::new(&self.name);
        match self
            .conn
            .query_first::<Option<i64>, _>(format!("SELECT MAX(version) FROM {SCHEMA_TABLE}"))
        {
            Ok(v) => Ok(v.flatten()),
            Err(mysql::Error::MySqlError(e)) if e.code == error::NO_SUCH_TABLE => Ok(None),
            Err(e) => Err(ctx.error(&e)),
        }
    }

    /// Apply every step newer than `from`, each recorded once all its
    /// statements have run (see `schema`).
    fn migrate(&mut self, from: Option<i64>) -> Result<()> {
        let ctx = ErrorContext::new(&self.name);
        for (version, statements) in MIGRATIONS {
            if from.is_some_and(|f| f >= *version) {
                continue;
            }
            for sql in *statements {
                self.conn.query_drop(*sql).map_err(|e| {
                    let err = ctx.error(&e);
                    match from {
                        // An upgrade: say which step, and who can apply it.
                        Some(f) => Error::storage(format!(
                            "{}; this mb-2fa upgrades the store from schema {f} to {version}: apply it once as the database user that may alter tables (mb-2fa-store check --db with that user; README, \"Upgrading mb-2fa on a cluster\")",
                            err.message()
                        )),
                        None => err,
                    }
                })?;
            }
            self.conn
                .exec_drop(
                    format!(
                        "INSERT INTO {SCHEMA_TABLE} (version, applied_at) VALUES (?, ?)
                         ON DUPLICATE KEY UPDATE version = version"
                    ),
                    (version, now()),
                )
                .map_err(|e| ctx.error(&e))?;
        }
        // Another process may have gone further meanwhile.
        if let Some(v) = self.recorded_version()? {
            check_not_newer(v, &self.name)?;
        }
        Ok(())
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn check_not_newer(version: i64, name: &str) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(Error::storage(format!(
            "{name} has schema version {version}, newer than this mb-2fa understands ({SCHEMA_VERSION}): upgrade mb-2fa on this node; the store was left untouched"
        )));
    }
    Ok(())
}

/// Read `password_file`: trusted like the key (owned by the user running the
/// tool, mode 0400 or 0600, no symlink); its first line is the password.
fn read_password(target: &MariadbTarget) -> Result<Option<Zeroizing<String>>> {
    use std::io::Read;
    let Some(path) = &target.password_file else {
        return Ok(None);
    };
    let p = path.display();
    let Some((file, _)) = secure_open::open(path, secure_open::PASSWORD)? else {
        return Err(Error::storage(format!(
            "password file {p} does not exist: create it (one line, mode 0400) or fix password_file"
        )));
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(4097)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::storage(format!("cannot read password file {p}: {e}")))?;
    if bytes.len() > 4096 {
        return Err(Error::storage(format!(
            "password file {p} is longer than 4096 bytes: it must hold one line, the password"
        )));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::storage(format!("password file {p} is not valid UTF-8")))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(Error::storage(format!(
            "password file {p} is empty: its first line must be the password"
        )));
    }
    Ok(Some(Zeroizing::new(line.to_string())))
}

fn connect(target: &MariadbTarget, name: &str) -> Result<Conn> {
    let password = read_password(target)?;
    let mut opts = OptsBuilder::new()
        .user(Some(target.user.clone()))
        .pass(password.as_ref().map(|p| p.as_str().to_string()))
        .db_name(Some(target.database.clone()))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
        .read_timeout(Some(IO_TIMEOUT))
        .write_timeout(Some(IO_TIMEOUT))
        .stmt_cache_size(Some(32))
        // An UPDATE's affected-row count is the rows it matched, not only
        // those whose values changed: a compare-and-set's verdict
        // (`Transaction::record_success`) must not depend on whether the
        // new values happen to equal the old ones.
        .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS);
    opts = match &target.endpoint {
        Endpoint::Socket(path) => opts.socket(Some(path.to_string_lossy().into_owned())),
        Endpoint::Tcp { host, port } => opts
            .ip_or_hostname(Some(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            ))
            .tcp_port(*port),
    };
    if target.needs_tls() {
        let mut ssl = SslOpts::default();
        if let Some(ca) = &target.tls_ca {
            ssl = ssl.with_root_cert_path(Some(ca.clone()));
        }
        opts = opts.ssl_opts(Some(ssl));
    }
    Conn::new(opts).map_err(|e| error::connect_error(name, target, &e))
}

impl Backend for Mariadb {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn begin(&mut self, access: Access) -> Result<Box<dyn Transaction + '_>> {
        let ctx = ErrorContext::new(&self.name);
        match access {
            Access::Read => {
                self.conn
                    .query_drop("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .map_err(|e| ctx.error(&e))?;
                self.conn
                    .query_drop("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")
                    .map_err(|e| ctx.error(&e))?;
            }
            Access::Write => {
                self.conn
                    .query_drop("START TRANSACTION READ WRITE")
                    .map_err(|e| ctx.error(&e))?;
            }
        }
        Ok(Box::new(tx::MariadbTx::new(
            &mut self.conn,
            &self.name,
            access,
        )))
    }

    fn schema_version(&mut self) -> Result<i64> {
        Ok(self.recorded_version()?.unwrap_or(0))
    }

    fn supported_schema_version(&self) -> i64 {
        SCHEMA_VERSION
    }

    /// Every table present and InnoDB (a MyISAM table would not be
    /// transactional, nor replicated by Galera).
    fn integrity_check(&mut self) -> Result<std::result::Result<String, String>> {
        let ctx = ErrorContext::new(&self.name);
        let rows: Vec<(String, Option<String>)> = self
            .conn
            .query(
                "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'mb2fa\\_%'",
            )
            .map_err(|e| ctx.error(&e))?;
        for table in TABLES {
            match rows.iter().find(|(n, _)| n == table) {
                None => return Ok(Err(format!("table {table} is missing"))),
                Some((_, engine)) if engine.as_deref().is_none_or(|e| e != "InnoDB") => {
                    return Ok(Err(format!(
                        "table {table} uses engine {}, not InnoDB",
                        engine.as_deref().unwrap_or("none")
                    )));
                }
                Some(_) => {}
            }
        }
        let cluster = if self.galera {
            let size: Option<(String, String)> = self
                .conn
                .query_first("SHOW STATUS LIKE 'wsrep_cluster_size'")
                .map_err(|e| ctx.error(&e))?;
            let ready: Option<(String, String)> = self
                .conn
                .query_first("SHOW STATUS LIKE 'wsrep_ready'")
                .map_err(|e| ctx.error(&e))?;
            let size = size.map(|(_, v)| v).unwrap_or_else(|| "?".into());
            let ready = ready.map(|(_, v)| v).unwrap_or_else(|| "?".into());
            if ready != "ON" {
                return Ok(Err(format!(
                    "this Galera node is not ready (wsrep_ready={ready})"
                )));
            }
            format!(", Galera node of a cluster of {size}")
        } else {
            String::new()
        };
        Ok(Ok(format!(
            "MariaDB: {} tables, all InnoDB{cluster}",
            TABLES.len()
        )))
    }

    fn server_clock(&mut self) -> Result<Option<ClockReading>> {
        let ctx = ErrorContext::new(&self.name);
        let before = Instant::now();
        let local_before = SystemTime::now();
        let server: Option<String> = self
            .conn
            .query_first("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) AS CHAR)")
            .map_err(|e| ctx.error(&e))?;
        let rtt = before.elapsed();
        let local = local_before + rtt / 2;
        let local = local
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let server = server.and_then(|s| s.parse::<f64>().ok()).ok_or_else(|| {
            Error::storage(format!("{}: the server's clock is unreadable", self.name))
        })?;
        Ok(Some(ClockReading {
            offset_secs: local - server,
            round_trip: rtt,
        }))
    }
}

pub use super::ClockReading;
