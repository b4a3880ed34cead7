//! The options every tool shares, and reading values that are secrets.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use zeroize::Zeroizing;

use super::Globals;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::email::Email;
use crate::error::{Error, Result};
use crate::key_file::DEFAULT_KEY_PATH;
use crate::store::{DEFAULT_DB_PATH, Location};

/// A tool's `Command` with the global options already on it.
pub fn command(name: &'static str, about: &'static str) -> Command {
    Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .arg(
            Arg::new("db")
                .long("db")
                .value_name("PATH|URL")
                .env("MB2FA_DB")
                .value_parser(value_parser!(OsString))
                .global(true)
                .help(DB_HELP),
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .global(true)
                .help(CONFIG_HELP),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Print one JSON document on stdout, on success and on failure"),
        )
        .arg(
            Arg::new("quiet")
                .short('q')
                .long("quiet")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Print only the essential result (errors still go to stderr)"),
        )
}

const DB_HELP: &str = concat!(
    "The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ",
    "?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else ",
    "/var/lib/mailborder/2fa.db"
);

const CONFIG_HELP: &str =
    "Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)";

/// `--email E`, required. Parsed by [`email`] so that a bad address gets our
/// one-line message, not clap's.
pub fn email_arg() -> Arg {
    Arg::new("email")
        .long("email")
        .value_name("EMAIL")
        .required(true)
        .value_parser(value_parser!(OsString))
        .help("Account (email address); trimmed and lower-cased")
}

/// `--key-file PATH` (or `MB2FA_KEY_FILE`), for the tools that touch secrets.
pub fn key_file_arg() -> Arg {
    Arg::new("key-file")
        .long("key-file")
        .value_name("PATH")
        .env("MB2FA_KEY_FILE")
        .value_parser(value_parser!(PathBuf))
        .help("Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key")
}

/// The store and the key as the options, the environment and the config
/// file name them (see [`crate::config`] for the precedence).
pub(super) fn store_and_key(m: &ArgMatches) -> Result<(Location, PathBuf)> {
    let db = match m.try_get_one::<OsString>("db").ok().flatten() {
        None => None,
        Some(raw) => {
            let from_env = m.value_source("db") == Some(clap::parser::ValueSource::EnvVariable);
            let origin = if from_env { "MB2FA_DB" } else { "--db" };
            let text = raw
                .to_str()
                .ok_or_else(|| Error::usage(format!("{origin} is not valid UTF-8")))?;
            Some(Location::parse(text, origin)?)
        }
    };
    let key_arg_exists = m.try_contains_id("key-file").is_ok();
    let key = m.try_get_one::<PathBuf>("key-file").ok().flatten().cloned();
    let explicit = m.try_get_one::<PathBuf>("config").ok().flatten().cloned();
    let wanted = db.is_none() || (key_arg_exists && key.is_none());
    let config = match (&explicit, wanted) {
        (Some(path), _) => Config::load(path, true)?,
        (None, true) => Config::load(Path::new(DEFAULT_CONFIG_PATH), false)?,
        (None, false) => None,
    }
    .unwrap_or_default();
    let db = db
        .or(config.store)
        .unwrap_or_else(|| Location::Sqlite(PathBuf::from(DEFAULT_DB_PATH)));
    let key = key
        .or(config.key_file)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_PATH));
    Ok((db, key))
}

/// The parsed `--email`.
pub fn email(m: &ArgMatches) -> Result<Email> {
    let raw = m
        .try_get_one::<OsString>("email")
        .ok()
        .flatten()
        .ok_or_else(|| Error::usage("--email is required"))?;
    let raw = raw
        .to_str()
        .ok_or_else(|| Error::usage("invalid email: it is not valid UTF-8"))?;
    Email::parse(raw)
}

/// Longest secret read from stdin.
const MAX_STDIN: u64 = 1024;

/// The value of a secret-bearing option; `-` reads one line from stdin so the
/// secret never shows in `ps`.
pub fn secret_value(value: &OsStr, what: &str) -> Result<Zeroizing<String>> {
    if value != "-" {
        let s = value
            .to_str()
            .ok_or_else(|| Error::usage(format!("malformed {what}: it is not valid UTF-8")))?;
        return Ok(Zeroizing::new(s.to_string()));
    }
    let mut buf = Zeroizing::new(Vec::new());
    io::stdin()
        .lock()
        .take(MAX_STDIN + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|e| Error::usage(format!("cannot read the {what} from stdin: {e}")))?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(Error::usage(format!(
            "malformed {what}: the line on stdin is too long"
        )));
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| Error::usage(format!("malformed {what}: stdin is not valid UTF-8")))?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Zeroizing::new(line.to_string()))
}

/// Ask before a destructive change. `yes` skips the question; without a
/// terminal (a script) or with `--json` there is nobody to ask, so `--yes` is
/// required.
pub fn confirm(g: &Globals, yes: bool, question: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = io::stdin();
    if g.json || !stdin.is_terminal() {
        return Err(Error::usage(
            "refusing without confirmation: no terminal to ask on; pass --yes",
        ));
    }
    let mut err = io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .take(MAX_STDIN)
        .read_line(&mut answer)
        .map_err(|e| Error::usage(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::usage("not confirmed; nothing was changed")),
    }
}
