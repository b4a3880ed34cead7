//! Where the store and the key are, and the config file that can say so.
//!
//! Precedence, for the store: `--db`, else `MB2FA_DB`, else `[store]` of the
//! config file (`--config FILE`, else `/etc/mailborder/2fa.toml` when it
//! exists), else the SQLite default. For the key: `--key-file`, else
//! `MB2FA_KEY_FILE`, else `[key] file`, else `/etc/mailborder/2fa.key`.
//!
//! ```toml
//! [store]
//! url = "mariadb://mb2fa@db.example.com/mailborder"
//! password_file = "/etc/mailborder/2fa-db.password"   # mode 0400
//! tls_ca = "/etc/mailborder/db-ca.pem"
//! # or: path = "/var/lib/mailborder/2fa.db"
//!
//! [key]
//! file = "/etc/mailborder/2fa.key"
//! ```
//!
//! The file tells root's tools which files to open, so it is trusted like
//! the key's directory: owned by root or the user running the tool, not
//! writable by group or others, not a symlink. It holds no secret (a
//! password lives in `password_file`), so it may be world-readable.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secure_open;
use crate::store::Location;

/// The config file read when `--config` is not given (if it exists).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mailborder/2fa.toml";

/// Longest config file read.
const MAX_CONFIG: u64 = 64 * 1024;

/// What a config file says (each part optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub store: Option<Location>,
    pub key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    store: Option<StoreDoc>,
    key: Option<KeyDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreDoc {
    path: Option<PathBuf>,
    url: Option<String>,
    password_file: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    file: Option<PathBuf>,
}

impl Config {
    /// Read the config file at `path`. `Ok(None)` if it does not exist and
    /// was not named explicitly. A file that exists but cannot be trusted or
    /// parsed is exit 10 (the store it names cannot be known: fail closed);
    /// a password in it is exit 2.
    pub fn load(path: &Path, explicit: bool) -> Result<Option<Config>> {
        let p = path.display();
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).bits())
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(Error::storage(format!(
                    "config file {p} is a symbolic link: refusing to follow it"
                )));
            }
            Err(e) => {
                return Err(Error::storage(format!("cannot open config file {p}: {e}")));
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::storage(format!("cannot inspect config file {p}: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(Error::storage(format!(
                "config file {p} is not a regular file"
            )));
        }
        let me = secure_open::euid();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(Error::storage(format!(
                "config file {p} is owned by uid {}, not by root or uid {me}: refusing a file someone else may have planted",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(Error::storage(format!(
                "config file {p} is writable by group or others (mode {:04o}): refusing it; run: chmod go-w {p}",
                meta.mode() & 0o777
            )));
        }
        secure_open::check_dir(&secure_open::parent_dir(path), secure_open::CONFIG)?;
        let mut text = String::new();
        file.take(MAX_CONFIG + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::storage(format!("cannot read config file {p}: {e}")))?;
        if text.len() as u64 > MAX_CONFIG {
            return Err(Error::storage(format!(
                "config file {p} is larger than {MAX_CONFIG} bytes"
            )));
        }
        Config::parse(&text, &p.to_string()).map(Some)
    }

    /// Parse a config file's text; `name` is the file, for messages.
    pub fn parse(text: &str, name: &str) -> Result<Config> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| {
            let first = e.message().lines().next().unwrap_or("").to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            Error::storage(format!(
                "config file {name} is not valid{at}: {}",
                crate::text::escape_for_terminal(&first)
            ))
        })?;
        let origin = format!("config file {name}");
        let store = match doc.store {
            None => None,
            Some(s) => Some(match (s.path, s.url) {
                (Some(_), Some(_)) => {
                    return Err(Error::storage(format!(
                        "{origin}: [store] has both path and url; keep one"
                    )));
                }
                (None, None) => {
                    return Err(Error::storage(format!(
                        "{origin}: [store] needs path (SQLite) or url (MariaDB)"
                    )));
                }
                (Some(path), None) => {
                    if s.password_file.is_some() || s.tls_ca.is_some() {
                        return Err(Error::storage(format!(
                            "{origin}: password_file and tls_ca go with url, not path"
                        )));
                    }
                    Location::Sqlite(path)
                }
                (None, Some(url)) => {
                    let mut loc = Location::parse(&url, &origin)?;
                    if let Location::Mariadb(t) = &mut loc {
                        for (from_file, slot, what) in [
                            (s.password_file, &mut t.password_file, "password_file"),
                            (s.tls_ca, &mut t.tls_ca, "tls_ca"),
                        ] {
                            if let Some(v) = from_file {
                                if slot.is_some() {
                                    return Err(Error::storage(format!(
                                        "{origin}: {what} is both in url and in [store]; keep one"
                                    )));
                                }
                                *slot = Some(v);
                            }
                        }
                    } else {
                        return Err(Error::storage(format!(
                            "{origin}: [store] url must be a mariadb:// URL (use path for a file)"
                        )));
                    }
                    loc
                }
            }),
        };
        Ok(Config {
            store,
            key_file: doc.key.and_then(|k| k.file),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Endpoint;

    #[test]
    fn a_cluster_config() {
        let c = Config::parse(
            "[store]\nurl = \"mariadb://mb2fa@db.example.com:3307/mailborder\"\npassword_file = \"/etc/mailborder/db.pw\"\ntls_ca = \"/etc/mailborder/ca.pem\"\n[key]\nfile = \"/etc/mailborder/k\"\n",
            "t",
        )
        .expect("parse");
        let Some(Location::Mariadb(t)) = c.store else {
            panic!("{c:?}")
        };
        assert_eq!(t.user, "mb2fa");
        assert_eq!(
            t.endpoint,
            Endpoint::Tcp {
                host: "db.example.com".into(),
                port: 3307
            }
        );
        assert_eq!(t.password_file, Some("/etc/mailborder/db.pw".into()));
        assert_eq!(t.tls_ca, Some("/etc/mailborder/ca.pem".into()));
        assert_eq!(c.key_file, Some("/etc/mailborder/k".into()));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, fragment, code) in [
            (
                "[store]\npath = \"/a\"\nurl = \"mariadb://u@h/d\"\n",
                "both",
                10,
            ),
            ("[store]\n", "needs path", 10),
            ("[store]\npaht = \"/a\"\n", "line 2", 10),
            ("[stor]\npath = \"/a\"\n", "line 1", 10),
            ("[store]\nurl = \"mariadb://u:pw@h/d\"\n", "password", 2),
            ("[store]\nurl = \"/var/x\"\n", "mariadb://", 10),
            (
                "[store]\npath = \"/a\"\npassword_file = \"/p\"\n",
                "go with url",
                10,
            ),
            ("[store\n", "not valid", 10),
        ] {
            let e = Config::parse(text, "t").expect_err(text);
            assert_eq!(e.exit_code(), code, "{text}: {}", e.message());
            assert!(e.message().contains(fragment), "{text}: {}", e.message());
            assert!(!e.message().contains("pw@"), "{}", e.message());
        }
    }
}
