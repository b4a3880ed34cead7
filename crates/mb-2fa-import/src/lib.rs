//! `mb-2fa-import`: take over enrollments from google-authenticator-libpam
//! (`~/.google_authenticator`), otpauth URIs and pam_oath (`users.oath`),
//! so users keep their phones. The formats and the rules are the core's
//! (`mb2fa_core::import`); this crate parses arguments and prints.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use mb2fa_core::account::Ctx;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;
use mb2fa_core::email::Email;
use mb2fa_core::import::{self, Entry, Imported, Source, input};
use mb2fa_core::{Error, Result};
use serde_json::{Value, json};

pub fn command() -> Command {
    cli::command(
        "mb-2fa-import",
        "Import TOTP enrollments from google-authenticator-libpam, otpauth URIs and pam_oath",
    )
    .long_about(
        "Import TOTP enrollments from other 2FA tools, so users keep the authenticator app they \
         have set up.\n\n\
         --from google-authenticator FILE --email E reads a ~/.google_authenticator file: its \
         secret, its period (STEP_SIZE), the steps it already used (DISALLOW_REUSE: the highest \
         becomes the replay floor) and its scratch codes, which become single-use backup codes \
         (typed as their 8 digits). --from otpauth reads otpauth://totp URIs, one per line, from \
         FILE or standard input, keeping algorithm, digits and period; the label's account is \
         the email unless --email names the account of a single URI. --from oath-users FILE \
         reads pam_oath's users.oath (HOTP/T30, HOTP/T60/8 ... lines); user names that are not \
         email addresses become user@DOMAIN with --domain.\n\n\
         Imported enrollments are active at once. The whole run is one transaction: a bad line \
         (named by its number) or an account that already has 2FA (exit 5, unless --force) \
         imports nothing. Counter-based (HOTP) entries are refused. --dry-run shows what would \
         be imported and changes nothing. Secrets and codes are never printed.",
    )
    .arg(
        Arg::new("from")
            .long("from")
            .value_name("FORMAT")
            .required(true)
            .value_parser(["google-authenticator", "otpauth", "oath-users"])
            .help("What to import: google-authenticator, otpauth or oath-users"),
    )
    .arg(
        Arg::new("input")
            .value_name("FILE")
            .value_parser(value_parser!(PathBuf))
            .help("The file to import; - or none reads standard input (otpauth only: the others need a FILE)"),
    )
    .arg(
        Arg::new("email")
            .long("email")
            .value_name("EMAIL")
            .value_parser(value_parser!(OsString))
            .help("The account: required with google-authenticator; with otpauth, for a single URI (else the label's account)"),
    )
    .arg(
        Arg::new("domain")
            .long("domain")
            .value_name("DOMAIN")
            .help("oath-users: make user@DOMAIN of user names that are not email addresses"),
    )
    .arg(cli::key_file_arg())
    .arg(
        Arg::new("force")
            .long("force")
            .action(ArgAction::SetTrue)
            .help("Replace enrollments that exist (their secrets and backup codes stop working)"),
    )
    .arg(
        Arg::new("dry-run")
            .long("dry-run")
            .action(ArgAction::SetTrue)
            .help("Show what would be imported; change nothing (no key needed)"),
    )
    .after_help(
        "Examples:\n  sudo mb-2fa-import --from google-authenticator /home/alice/.google_authenticator \\\n      \
         --email alice@example.com\n  \
         sudo mb-2fa-import --from otpauth --dry-run < uris.txt\n  \
         sudo mb-2fa-import --from oath-users /etc/users.oath --domain example.com",
    )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let source = m
        .get_one::<String>("from")
        .and_then(|f| Source::parse(f))
        .ok_or_else(|| Error::usage("--from is required"))?;
    let email = match m.get_one::<OsString>("email") {
        Some(_) => Some(cli::email(m)?),
        None => None,
    };
    let domain = m.get_one::<String>("domain").map(String::as_str);
    check_options(source, email.as_ref(), domain)?;
    let path = m
        .get_one::<PathBuf>("input")
        .filter(|p| p.as_os_str() != "-");
    let (name, bytes) = match path {
        Some(p) => (
            mb2fa_core::text::escape_for_terminal(&p.to_string_lossy()).into_owned(),
            input::read_file(p)?,
        ),
        None if source == Source::Otpauth => (
            "stdin".to_string(),
            input::read_bounded(std::io::stdin().lock(), "stdin")?,
        ),
        None => {
            return Err(Error::usage(format!(
                "--from {} needs the FILE to import",
                source.as_str()
            )));
        }
    };
    let entries: Vec<Entry> = match source {
        Source::GoogleAuthenticator => {
            let email = email
                .as_ref()
                .ok_or_else(|| Error::usage("--from google-authenticator needs --email"))?;
            vec![import::google_authenticator::parse(&bytes, &name, email)?]
        }
        Source::Otpauth => import::otpauth::parse(&bytes, &name, email.as_ref())?,
        Source::OathUsers => import::oath_users::parse(&bytes, &name, domain)?,
    };
    drop(bytes);
    let dry_run = m.get_flag("dry-run");
    let force = m.get_flag("force");
    let mut store = if dry_run {
        cli::open_store(g)?
    } else {
        cli::open_for_enrollment(m, g)?
    };
    let ctx = Ctx::new(&SystemClock, "mb-2fa-import");
    let done = import::import(&mut store, &ctx, source, &name, entries, force, dry_run)?;
    Ok(report(g, source, dry_run, &done))
}

fn check_options(source: Source, email: Option<&Email>, domain: Option<&str>) -> Result<()> {
    match source {
        Source::GoogleAuthenticator if email.is_none() => Err(Error::usage(
            "--from google-authenticator needs --email (the file does not name its account)",
        )),
        Source::OathUsers if email.is_some() => Err(Error::usage(
            "--email is not for --from oath-users: each line names its user (see --domain)",
        )),
        Source::GoogleAuthenticator | Source::Otpauth if domain.is_some() => {
            Err(Error::usage("--domain is only for --from oath-users"))
        }
        _ => Ok(()),
    }
}

fn report(g: &Globals, source: Source, dry_run: bool, done: &[Imported]) -> Report {
    let accounts: Vec<Value> = done
        .iter()
        .map(|a| {
            json!({
                "email": a.email.as_str(),
                "line": a.line,
                "state": "active",
                "issuer": a.issuer,
                "algorithm": a.params.algorithm.as_str(),
                "digits": a.params.digits,
                "period": a.params.period,
                "replay_floor": a.replay_floor,
                "backup_codes": a.backup_codes,
                "replaced": a.replaced.map(|s| s.as_str()),
                "notes": a.notes,
            })
        })
        .collect();
    let mut report = Report::new()
        .field("source", source.as_str())
        .field("dry_run", dry_run)
        .field("imported", if dry_run { 0 } else { done.len() })
        .field("accounts", accounts);
    if g.quiet {
        for a in done {
            report = report.line(a.email.as_str());
        }
        return report;
    }
    let verb = if dry_run { "would import" } else { "imported" };
    for a in done {
        let p = a.params;
        let mut line = format!(
            "{verb} {} (line {}): {}, {} digits, {} s",
            a.email,
            a.line,
            p.algorithm.as_str(),
            p.digits,
            p.period
        );
        match a.replay_floor {
            Some(step) => line.push_str(&format!(", replay floor step {step}")),
            None => line.push_str(", no replay floor"),
        }
        line.push_str(&format!(
            ", {} backup code{}",
            a.backup_codes,
            if a.backup_codes == 1 { "" } else { "s" }
        ));
        if let Some(old) = a.replaced {
            line.push_str(&format!(
                "; {} the {} enrollment",
                if dry_run { "would replace" } else { "replaced" },
                old.as_str()
            ));
        }
        report = report.line(line);
        for note in &a.notes {
            report = report.line(format!("  note: {note}"));
        }
    }
    let n = done.len();
    let s = if n == 1 { "" } else { "s" };
    report = report.line(if dry_run {
        format!(
            "Dry run: {n} enrollment{s} would be imported from {}; nothing was changed.",
            source.as_str()
        )
    } else {
        format!(
            "{n} enrollment{s} imported from {}, active now.",
            source.as_str()
        )
    });
    if done.iter().any(|a| a.backup_codes == 0) && !dry_run {
        report = report.line(
            "Accounts without backup codes: give them some with mb-2fa-backup-codes --email EMAIL.",
        );
    }
    report
}
