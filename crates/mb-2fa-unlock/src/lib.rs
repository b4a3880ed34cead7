//! `mb-2fa-unlock`: clear the lockout of an account after repeated wrong
//! codes (the lock otherwise runs out by itself, 30 s doubling up to 1 h).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use mb2fa_core::Result;
use mb2fa_core::account::{self, Ctx};
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;

pub fn command() -> Command {
    cli::command(
        "mb-2fa-unlock",
        "Clear the lockout of an account after repeated failed codes",
    )
    .long_about(
        "Clear the lockout of an account and its count of failed codes.\n\n\
             After 5 wrong codes in a row an account is locked for 30 s, doubling with each \
             further failure up to 1 h. Unlock it when the user has been identified; the action \
             is recorded in the audit trail. No key file is needed.",
    )
    .arg(cli::email_arg())
    .after_help("Example:\n  sudo mb-2fa-unlock --email alice@example.com")
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = cli::email(m)?;
    let mut store = cli::open_store(g)?;
    let ctx = Ctx::new(&SystemClock, "mb-2fa-unlock");
    let account::Unlocked { before, was_locked } = account::unlock(&mut store, &ctx, &email)?;
    let report = Report::new()
        .field("email", email.as_str())
        .field("unlocked", true)
        .field("was_locked", was_locked)
        .field("failed_attempts", before.failed_attempts)
        .field(
            "locked_until",
            cli::json_time(before.locked_until.filter(|_| was_locked)),
        );
    if g.quiet {
        return Ok(report);
    }
    Ok(if was_locked {
        report.line(format!(
            "{email} unlocked (it was locked until {} after {} failed attempts).",
            cli::human_time(before.locked_until),
            before.failed_attempts
        ))
    } else {
        report.line(format!(
            "{email} was not locked; its count of failed attempts ({}) is reset.",
            before.failed_attempts
        ))
    })
}
