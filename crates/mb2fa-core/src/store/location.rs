//! Where the store is: an SQLite file or a MariaDB database, as named by
//! `--db PATH|URL`, `MB2FA_DB` or the config file.
//!
//! A MariaDB URL is `mariadb://USER@HOST[:PORT]/DB` or
//! `mariadb://USER@localhost/DB?socket=/run/mysqld/mysqld.sock`, with the
//! optional query parameters `password_file=PATH` and `tls_ca=PATH`. A
//! password in the URL is refused (exit 2): it would show in `ps` and in
//! shell histories. It comes from `password_file` (mode 0400), or from
//! MariaDB's `unix_socket` authentication over the local socket.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The MariaDB port when a URL names none.
pub const DEFAULT_MARIADB_PORT: u16 = 3306;

/// Which store the tools use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A database on a MariaDB server (or Galera cluster).
    Mariadb(Box<MariadbTarget>),
}

/// How to reach a MariaDB server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The server's local socket (`?socket=`): no TLS needed, and root may
    /// authenticate by `unix_socket` with no password at all.
    Socket(PathBuf),
    /// TCP. TLS is required unless the host is this machine (`localhost`,
    /// a loopback address).
    Tcp { host: String, port: u16 },
}

/// A MariaDB store: server, account and database. Never holds a password:
/// only where to read one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariadbTarget {
    pub user: String,
    pub endpoint: Endpoint,
    pub database: String,
    /// A file holding the password (mode 0400, owned by the user running the tool).
    pub password_file: Option<PathBuf>,
    /// The CA that signs the server's certificate; with it, TLS is used
    /// even to this machine.
    pub tls_ca: Option<PathBuf>,
}

impl MariadbTarget {
    /// Whether the connection must be encrypted: TCP to another machine, or
    /// a CA given.
    pub fn needs_tls(&self) -> bool {
        match &self.endpoint {
            Endpoint::Socket(_) => self.tls_ca.is_some(),
            Endpoint::Tcp { host, .. } => self.tls_ca.is_some() || !is_local_host(host),
        }
    }
}

/// `localhost` or a loopback address: traffic that never leaves the machine.
fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Location {
    /// Parse `--db`, `MB2FA_DB` or the config file's value. `origin` names
    /// where it came from, for messages.
    pub fn parse(value: &str, origin: &str) -> Result<Location> {
        let lower = value.get(..10).unwrap_or(value).to_ascii_lowercase();
        if lower.starts_with("mariadb://") || lower.starts_with("mysql://") {
            return MariadbTarget::parse(value, origin).map(|t| Location::Mariadb(Box::new(t)));
        }
        if let Some((scheme, _)) = value.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(Error::usage(format!(
                "{origin}: unknown store URL scheme {}: use a file path or mariadb://USER@HOST/DB",
                crate::text::escape_for_terminal(scheme)
            )));
        }
        if value.is_empty() {
            return Err(Error::usage(format!("{origin}: the store path is empty")));
        }
        Ok(Location::Sqlite(PathBuf::from(value)))
    }

    /// The SQLite file, if this is one (for messages that name it).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Mariadb(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Mariadb(t) => write!(f, "{t}"),
        }
    }
}

/// The URL without its file parameters (never a password: it has none).
impl fmt::Display for MariadbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Socket(s) => write!(
                f,
                "mariadb://{}@localhost/{}?socket={}",
                self.user,
                self.database,
                s.display()
            ),
            Endpoint::Tcp { host, port } if *port == DEFAULT_MARIADB_PORT => {
                write!(f, "mariadb://{}@{host}/{}", self.user, self.database)
            }
            Endpoint::Tcp { host, port } => {
                write!(f, "mariadb://{}@{host}:{port}/{}", self.user, self.database)
            }
        }
    }
}

impl MariadbTarget {
    fn parse(value: &str, origin: &str) -> Result<MariadbTarget> {
        let bad = |why: &str| {
            Error::usage(format!(
                "{origin}: invalid store URL ({why}): expected mariadb://USER@HOST[:PORT]/DB or mariadb://USER@localhost/DB?socket=PATH"
            ))
        };
        if value.chars().any(char::is_control) {
            return Err(bad("it contains control characters"));
        }
        let url = url::Url::parse(value).map_err(|e| bad(&e.to_string()))?;
        // `USER:@HOST` has an empty password, which the parser drops: any
        // colon in the user part is a password field.
        let authority = value
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("");
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
        if url.password().is_some() || userinfo.contains(':') {
            return Err(Error::usage(format!(
                "{origin}: the store URL holds a password; refusing it (it would show in ps and in shell history): put the password in a file (mode 0400) and name it with password_file"
            )));
        }
        let user = percent_decoded(url.username()).ok_or_else(|| bad("the user name"))?;
        if user.is_empty() {
            return Err(bad("no user name: mariadb://USER@HOST/DB"));
        }
        if !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            || user.len() > 80
        {
            return Err(bad("the user name may hold only letters, digits, _ - ."));
        }
        let database = url.path().trim_start_matches('/').to_string();
        if database.is_empty() {
            return Err(bad("no database name: mariadb://USER@HOST/DB"));
        }
        if !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || database.len() > 64
        {
            return Err(bad(
                "the database name may hold only letters, digits and _, at most 64",
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .to_string();
        let mut socket = None;
        let mut password_file = None;
        let mut tls_ca = None;
        for (k, v) in url.query_pairs() {
            let slot = match k.as_ref() {
                "socket" => &mut socket,
                "password_file" => &mut password_file,
                "tls_ca" => &mut tls_ca,
                "password" | "pass" | "pwd" => {
                    return Err(Error::usage(format!(
                        "{origin}: the store URL holds a password; refusing it (it would show in ps and in shell history): put the password in a file (mode 0400) and name it with password_file"
                    )));
                }
                other => {
                    return Err(bad(&format!(
                        "unknown parameter {}; known: socket, password_file, tls_ca",
                        crate::text::escape_for_terminal(other)
                    )));
                }
            };
            if v.is_empty() || !v.starts_with('/') {
                return Err(bad(&format!("{k} must be an absolute path")));
            }
            if slot.replace(PathBuf::from(v.as_ref())).is_some() {
                return Err(bad(&format!("{k} given twice")));
            }
        }
        let endpoint = match socket {
            Some(path) => {
                if !is_local_host(&host) || url.port().is_some() {
                    return Err(bad(
                        "a socket is on this machine: use localhost and no port",
                    ));
                }
                Endpoint::Socket(path)
            }
            None => Endpoint::Tcp {
                host,
                port: url.port().unwrap_or(DEFAULT_MARIADB_PORT),
            },
        };
        Ok(MariadbTarget {
            user,
            endpoint,
            database,
            password_file,
            tls_ca,
        })
    }
}

fn percent_decoded(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> MariadbTarget {
        match Location::parse(s, "--db").expect(s) {
            Location::Mariadb(t) => *t,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            Location::parse("/var/lib/mailborder/2fa.db", "--db").expect("path"),
            Location::Sqlite("/var/lib/mailborder/2fa.db".into())
        );
        let t = target("mariadb://mb2fa@db.example.com/mailborder");
        assert_eq!(
            t.endpoint,
            Endpoint::Tcp {
                host: "db.example.com".into(),
                port: 3306
            }
        );
        assert!(t.needs_tls());
        assert_eq!(t.to_string(), "mariadb://mb2fa@db.example.com/mailborder");
        let t = target("mariadb://root@localhost/mb?socket=/run/mysqld/mysqld.sock");
        assert_eq!(
            t.endpoint,
            Endpoint::Socket("/run/mysqld/mysqld.sock".into())
        );
        assert!(!t.needs_tls());
        let t = target("mariadb://u@127.0.0.1:3307/mb?password_file=/etc/mailborder/db.pw");
        assert!(!t.needs_tls());
        assert_eq!(t.password_file, Some("/etc/mailborder/db.pw".into()));
        assert_eq!(t.to_string(), "mariadb://u@127.0.0.1:3307/mb");
        assert!(target("mariadb://u@[::1]:3307/mb").endpoint != Endpoint::Socket("/x".into()));
        assert!(!target("mariadb://u@[::1]:3307/mb").needs_tls());
        assert!(target("mariadb://u@127.0.0.1/mb?tls_ca=/etc/ca.pem").needs_tls());
    }

    #[test]
    fn passwords_are_refused() {
        for s in [
            "mariadb://u:secret@localhost/mb",
            "mariadb://u:@localhost/mb",
            "mariadb://u@localhost/mb?password=secret",
        ] {
            let e = Location::parse(s, "--db").expect_err(s);
            assert_eq!(e.exit_code(), 2, "{s}");
            assert!(e.message().contains("password"), "{}", e.message());
            assert!(!e.message().contains("secret"), "{}", e.message());
        }
    }

    #[test]
    fn malformed_urls_are_usage_errors() {
        for s in [
            "mariadb://localhost/mb",
            "mariadb://u@localhost/",
            "mariadb://u@localhost/m-b",
            "mariadb://u@localhost/mb?sock=/x",
            "mariadb://u@localhost/mb?socket=relative",
            "mariadb://u@db.example.com/mb?socket=/x",
            "mariadb://u@localhost/mb?socket=/x&socket=/y",
            "postgres://u@localhost/mb",
            "mariadb://u\u{1b}@localhost/mb",
        ] {
            let e = Location::parse(s, "--db").expect_err(s);
            assert_eq!(e.exit_code(), 2, "{s}: {}", e.message());
            assert!(!e.message().contains('\u{1b}'));
        }
    }
}
