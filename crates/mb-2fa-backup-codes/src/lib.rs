//! `mb-2fa-backup-codes`: replace an account's backup codes with 10 new ones.
//! The old codes stop working the moment the new ones are stored.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use mb2fa_core::Result;
use mb2fa_core::account::{self, Ctx};
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;

pub fn command() -> Command {
    cli::command(
        "mb-2fa-backup-codes",
        "Replace an account's backup codes with 10 new ones",
    )
    .long_about(
        "Replace an account's backup codes with 10 new single-use codes and print them.\n\n\
             The old codes, used or not, stop working at once. The new codes are shown only now.",
    )
    .arg(cli::email_arg())
    .after_help("Example:\n  sudo mb-2fa-backup-codes --email alice@example.com")
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = cli::email(m)?;
    let mut store = cli::open_store(g)?;
    let ctx = Ctx::new(&SystemClock, "mb-2fa-backup-codes");
    let codes: Vec<String> = account::regenerate_backup_codes(&mut store, &ctx, &email)?
        .iter()
        .map(|c| c.formatted().to_string())
        .collect();
    let mut report = Report::new()
        .if_undelivered(format!(
            "new backup codes for {email} were made and the old ones revoked, but the new ones were not delivered; make another set with: mb-2fa-backup-codes --email {email}"
        ))
        .field("email", email.as_str())
        .field("backup_codes", codes.clone());
    if !g.quiet {
        report = report
            .line(format!(
                "New backup codes for {email}; the old ones no longer work."
            ))
            .line("Each works once; store them offline; they are not shown again:");
    }
    for c in &codes {
        report = report.line(if g.quiet { c.clone() } else { format!("  {c}") });
    }
    Ok(report)
}
