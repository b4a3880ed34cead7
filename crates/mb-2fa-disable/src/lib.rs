//! `mb-2fa-disable`: remove an account's 2FA (secret and backup codes). The
//! admin's emergency path, or with `--code` the user's self-service path.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use mb2fa_core::Result;
use mb2fa_core::account::{self, Ctx};
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;
use mb2fa_core::code::Code;

pub fn command() -> Command {
    cli::command("mb-2fa-disable", "Remove an account's 2FA secret and backup codes (emergency path)")
        .long_about(
            "Remove an account's 2FA secret and backup codes.\n\n\
             Asks for confirmation on a terminal; scripts (no terminal, or --json) must pass --yes. \
             With --code, a valid current code (or an unused backup code) is required first: the \
             self-service path for a user who still has the phone. Without --code no key file is \
             needed, so this works even when the key is lost.",
        )
        .arg(cli::email_arg())
        .arg(cli::key_file_arg().help("Key that seals the TOTP secrets; only needed with --code"))
        .arg(
            Arg::new("code")
                .long("code")
                .value_name("CODE")
                .value_parser(value_parser!(OsString))
                .help("Require this valid code first (6 digits or a backup code); - reads it from stdin"),
        )
        .arg(
            Arg::new("yes")
                .short('y')
                .long("yes")
                .action(ArgAction::SetTrue)
                .help("Do not ask for confirmation (required without a terminal)"),
        )
        .after_help(
            "Examples:\n  sudo mb-2fa-disable --email alice@example.com\n  \
             mb-2fa-disable --email alice@example.com --yes --json",
        )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = cli::email(m)?;
    let code = match m.get_one::<OsString>("code") {
        Some(v) => Some(Code::parse(&cli::secret_value(v, "code")?)?),
        None => None,
    };
    // Without --code no secret is read: this works without the key (break-glass).
    let mut store = if code.is_some() {
        cli::open_unlocked(m, g)?
    } else {
        cli::open_store(g)?
    };
    let ctx = Ctx::new(&SystemClock, "mb-2fa-disable");
    let Some(shown) = account::state(&mut store, &email)? else {
        // Nothing to confirm: record the attempt, exit 3.
        return Err(account::disable_not_enrolled(&mut store, &ctx, &email));
    };
    cli::confirm(
        g,
        m.get_flag("yes"),
        &format!(
            "Remove 2FA ({}) for {email}? Its secret and backup codes are deleted; it must enroll again.",
            shown.state.as_str()
        ),
    )?;
    match &code {
        Some(code) => account::disable(&mut store, &ctx, &email, Some(code))?,
        None => account::disable_shown(&mut store, &ctx, &email, &shown)?,
    }
    let report = Report::new()
        .field("email", email.as_str())
        .field("disabled", true);
    if g.quiet {
        return Ok(report);
    }
    Ok(report.line(format!(
        "2FA removed for {email}: its secret and backup codes are deleted. Enroll again with mb-2fa-enable --email {email}"
    )))
}
