//! `mb-2fa-store backup FILE`: a consistent, checked copy of an SQLite
//! store while other tools run (the work is `maintenance::backup`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgMatches, Command};
use mb2fa_core::cli::{Globals, Report};
use mb2fa_core::maintenance;
use mb2fa_core::text::escape_for_terminal;
use mb2fa_core::{Error, Result};

pub(crate) fn command() -> Command {
    Command::new("backup")
        .about("Write a consistent, checked copy of an SQLite store to a new file (not the key)")
        .long_about(
            "Write a consistent copy of an SQLite store to FILE while other tools run (SQLite's \
             online backup API: one snapshot, logins are not blocked), then open the copy and \
             check it (SQLite's integrity check, the schema version) before it gets its name. \
             FILE is created with mode 0600 and never replaces anything: an existing FILE (or a \
             symbolic link there) is exit 5; a FILE in a missing directory, or the store \
             itself, is exit 2. A backup that fails or is killed leaves no FILE (at most a \
             hidden .mb-2fa-backup-*.partial beside it).\n\n\
             The key file is NOT in the backup: back it up separately and keep it apart; \
             without it a backup opens no secret. To restore: take the appliance out of the \
             login path, move the database and its -wal/-shm files aside, copy the backup in \
             place (owner root, mode 0600), keep the key file, run mb-2fa-store check.\n\n\
             A MariaDB store is refused (exit 2): dump its mb2fa_% tables with mariadb-dump \
             --single-transaction (README, \"Backups\").",
        )
        .arg(
            Arg::new("file")
                .value_name("FILE")
                .required(true)
                .value_parser(clap::value_parser!(OsString))
                .help("The new backup file (must not exist; its directory must)"),
        )
}

pub(crate) fn run(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let file = PathBuf::from(
        m.get_one::<OsString>("file")
            .ok_or_else(|| Error::usage("backup needs FILE, the new backup file"))?,
    );
    let done = maintenance::backup(&g.db, &file)?;
    let shown = escape_for_terminal(&file.to_string_lossy()).to_string();
    let key = g.key_file.display().to_string();
    let report = Report::new()
        .field("file", file.to_string_lossy().into_owned())
        .field("from", g.db.to_string())
        .field("accounts", done.accounts)
        .field("schema_version", done.schema_version)
        .field("integrity", done.integrity.clone())
        .field("bytes", done.bytes)
        .field("key_included", false)
        .field("key_file", key.clone());
    if g.quiet {
        return Ok(report);
    }
    Ok(report
        .line(format!(
            "Backed up {} to {shown}: {} account(s), schema version {}, integrity check {}.",
            g.db, done.accounts, done.schema_version, done.integrity
        ))
        .line(format!(
            "The key file {} is NOT in the backup: back it up separately; without it the backup opens no secret.",
            escape_for_terminal(&key)
        )))
}
