//! `mb-2fa-verify`: is this code right for this account? Exit 0 yes, 1 no.
//! A TOTP code's step is never accepted twice; a backup code is spent.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command, value_parser};
use mb2fa_core::Result;
use mb2fa_core::account::{self, Ctx, Method};
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;
use mb2fa_core::code::Code;
use mb2fa_core::store::OpenMode;

pub fn command() -> Command {
    cli::command(
        "mb-2fa-verify",
        "Check a TOTP code or a backup code for an account",
    )
    .long_about(
        "Check a TOTP code or a backup code for an account.\n\n\
             Exit 0 when the code is accepted, 1 when it is rejected (wrong, already used), \
             3 when the account has no 2FA, 4 when it is locked after 5 wrong codes, 10 when \
             the database or the key cannot be read. The first good \
             TOTP code activates a pending enrollment. A backup code works once.",
    )
    .arg(cli::email_arg())
    .arg(cli::key_file_arg())
    .arg(
        Arg::new("code")
            .long("code")
            .value_name("CODE")
            .required(true)
            .value_parser(value_parser!(OsString))
            .help(
                "6-digit code from the app, or a backup code XXXX-XXXX-XXXX; - reads it from stdin",
            ),
    )
    .after_help(
        "Examples:\n  mb-2fa-verify --email alice@example.com --code 123456\n  \
             echo \"$CODE\" | mb-2fa-verify --email alice@example.com --code - --json",
    )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = cli::email(m)?;
    let raw = m
        .get_one::<OsString>("code")
        .map(|v| cli::secret_value(v, "code"))
        .transpose()?
        .unwrap_or_default();
    let code = Code::parse(&raw)?;
    let mut store = cli::open_unlocked(m, g, OpenMode::MustExist)?;
    let ctx = Ctx::new(&SystemClock, "mb-2fa-verify");
    let v = account::verify(&mut store, &ctx, &email, &code)?;
    let mut report = Report::new()
        .field("email", email.as_str())
        .field("method", v.method.as_str())
        .field("activated", v.activated)
        .field("offset_steps", v.offset_steps)
        .field("backup_codes_left", v.backup_codes_left);
    if g.quiet {
        return Ok(report);
    }
    report = match v.method {
        Method::Totp => report.line(format!("Code accepted for {email}.")),
        Method::BackupCode => report.line(format!(
            "Backup code accepted for {email}; {} backup code{} left.",
            v.backup_codes_left,
            if v.backup_codes_left == 1 { "" } else { "s" }
        )),
    };
    if v.activated {
        report = report.line(format!("2FA is now active for {email}."));
    }
    if let Some(offset) = v.offset_steps.filter(|o| *o != 0) {
        report = report.line(format!(
            "Note: the code matched {} s {} the server clock; check the time on phone and server if this persists.",
            offset.abs() * 30,
            if offset < 0 { "behind" } else { "ahead of" }
        ));
    }
    if v.method == Method::BackupCode && v.backup_codes_left <= 2 {
        report = report.line(format!(
            "Few backup codes left: make new ones with mb-2fa-backup-codes --email {email}"
        ));
    }
    Ok(report)
}
