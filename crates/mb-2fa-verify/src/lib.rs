//! `mb-2fa-verify`: is this code right for this account? Exit 0 yes, 1 no.
//! A TOTP code's step is never accepted twice; a backup code is spent.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use mb2fa_core::account::{self, Ctx, Diagnosis, Method};
use mb2fa_core::audit::Via;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::{self, SystemClock};
use mb2fa_core::code::Code;
use mb2fa_core::email::Email;
use mb2fa_core::policy::{self, Decision};
use mb2fa_core::{Error, Result, skew};

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
             TOTP code activates a pending enrollment. A backup code works once.\n\n\
             --diagnose explains why a code is or is not accepted (phone clock off, code already \
             used, wrong account in the app); it activates and spends nothing, but like a \
             verification it is refused while the account is locked and a code that matches \
             nowhere counts as a wrong code. --resync takes two consecutive \
             codes from a phone whose clock is off by up to 5 minutes and centres the account's \
             window on it.",
    )
    .arg(cli::email_arg())
    .arg(cli::key_file_arg())
    .arg(
        Arg::new("code")
            .long("code")
            .value_name("CODE")
            .required_unless_present_any(["resync", "login"])
            .conflicts_with_all(["resync", "login"])
            .value_parser(value_parser!(OsString))
            .help(
                "Code from the app (6 digits; 8 for some imported enrollments), or a backup code XXXX-XXXX-XXXX (an imported scratch code: its 8 digits); - reads it from stdin",
            ),
    )
    .arg(
        Arg::new("diagnose")
            .long("diagnose")
            .action(ArgAction::SetTrue)
            .requires("code")
            .help("Explain where the code matches and why; accepts nothing, counts a code that matches nowhere"),
    )
    .arg(
        Arg::new("diagnose-minutes")
            .long("diagnose-minutes")
            .value_name("MIN")
            .value_parser(value_parser!(i64).range(1..=120))
            .default_value("10")
            .requires("diagnose")
            .help("How far back --diagnose searches (ahead: never beyond the verification window)"),
    )
    .arg(
        Arg::new("resync")
            .long("resync")
            .value_names(["CODE1", "CODE2"])
            .num_args(2)
            .value_parser(value_parser!(OsString))
            .help("Re-synchronise the clock drift from two consecutive codes (one may be -, read from stdin)"),
    )
    .arg(
        Arg::new("login")
            .long("login")
            .action(ArgAction::SetTrue)
            .requires("json")
            .conflicts_with_all(["diagnose", "resync"])
            .help("A whole login, as pam_mb2fa runs it: the policy decides, then the code is read from stdin (JSON lines, see the man page)"),
    )
    .arg(
        Arg::new("role")
            .long("role")
            .value_name("ROLE")
            .action(ArgAction::Append)
            .requires("login")
            .help("With --login: a role of the account (repeatable), as for mb-2fa-policy check"),
    )
    .args(PAM_ITEMS.map(|(id, value, help)| {
        Arg::new(id)
            .long(id)
            .value_name(value)
            .requires("login")
            .help(help)
    }))
    .after_help(
        "Examples:\n  mb-2fa-verify --email alice@example.com --code 123456\n  \
             echo \"$CODE\" | mb-2fa-verify --email alice@example.com --code - --json\n  \
             mb-2fa-verify --email alice@example.com --code 123456 --diagnose\n  \
             mb-2fa-verify --email alice@example.com --resync 123456 654321",
    )
}

/// What a PAM module says about the login, for the audit trail: option,
/// value name, help.
const PAM_ITEMS: [(&str, &str, &str); 4] = [
    (
        "pam-service",
        "NAME",
        "With --login: the PAM service (sshd, sudo), recorded in the audit trail",
    ),
    (
        "pam-user",
        "USER",
        "With --login: the PAM user, recorded in the audit trail",
    ),
    (
        "pam-rhost",
        "HOST",
        "With --login: the remote host (PAM_RHOST), recorded in the audit trail",
    ),
    (
        "pam-tty",
        "TTY",
        "With --login: the terminal (PAM_TTY), recorded in the audit trail",
    ),
];

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = cli::email(m)?;
    if let Some(codes) = m.get_many::<OsString>("resync") {
        return resync(m, g, &email, codes.collect());
    }
    if m.get_flag("login") {
        return login(m, g, &email);
    }
    let raw = m
        .get_one::<OsString>("code")
        .map(|v| cli::secret_value(v, "code"))
        .transpose()?
        .unwrap_or_default();
    let code = Code::parse(&raw)?;
    let mut store = cli::open_for_logins(m, g)?;
    let ctx = Ctx::new(&SystemClock, "mb-2fa-verify");
    if m.get_flag("diagnose") {
        let minutes = m
            .get_one::<i64>("diagnose-minutes")
            .copied()
            .unwrap_or(skew::DIAGNOSE_MINUTES);
        let d = account::diagnose(
            &mut store,
            &ctx,
            &email,
            &code,
            minutes,
            clock::ntp_status(),
        )?;
        return Ok(diagnosis_report(g, &email, &d));
    }
    let v = account::verify(&mut store, &ctx, &email, &code)?;
    Ok(verified_report(g, &email, &v))
}

/// `--login`: the policy decides (recorded, with the PAM items); a decision
/// other than `code` is the whole answer (exit 6 let in, 7 keep out, as
/// `mb-2fa-policy check`). For `code`, that decision goes out as one JSON
/// line first, then the code is read from stdin and verified: the caller
/// prompts only a user who needs a code, and one process (one store
/// connection, one key read) serves the whole login. The check and the
/// verification are two transactions on purpose: the user types between
/// them, and no transaction stays open while a person thinks.
fn login(m: &ArgMatches, g: &Globals, email: &Email) -> Result<Report> {
    let roles = match m.get_many::<String>("role") {
        Some(rs) => rs
            .map(|r| policy::parse_role(r))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let item = |id: &str| m.get_one::<String>(id).map(String::as_str);
    let mut store = cli::open_for_logins(m, g)?;
    let mut ctx = Ctx::new(&SystemClock, "mb-2fa-verify");
    if item("pam-service").is_some() || item("pam-user").is_some() {
        ctx.via = Some(Via::new(
            item("pam-service").unwrap_or("?"),
            item("pam-user").unwrap_or("?"),
            item("pam-rhost"),
            item("pam-tty"),
        ));
    }
    let c = policy::check_login(&mut store, &ctx, email, &roles)?;
    let mut decision = Report::new()
        .field("phase", "decision")
        .field("email", email.as_str())
        .field("decision", c.decision.as_str())
        .field("message", policy::login_message(&c.decision))
        .exit(c.decision.exit_code());
    decision = match &c.decision {
        Decision::Code => decision,
        Decision::Allow { reason } | Decision::Deny { reason } => {
            decision.field("reason", reason.as_str())
        }
        Decision::Setup {
            deadline,
            grace_days_left,
        } => decision
            .field("deadline", clock::rfc3339(*deadline))
            .field("grace_days_left", *grace_days_left),
    };
    if c.decision != Decision::Code {
        return Ok(decision);
    }
    cli::emit_line(&decision)?;
    let raw = cli::secret_value(std::ffi::OsStr::new("-"), "code")?;
    if raw.trim().is_empty() {
        return Err(Error::usage(
            "no code given: the login was abandoned at the prompt",
        ));
    }
    let code = Code::parse(&raw)?;
    let v = account::verify(&mut store, &ctx, email, &code)?;
    Ok(verified_report(g, email, &v).field("phase", "verify"))
}

fn verified_report(g: &Globals, email: &Email, v: &account::Verified) -> Report {
    let mut report = Report::new()
        .field("email", email.as_str())
        .field("method", v.method.as_str())
        .field("activated", v.activated)
        .field("offset_steps", v.offset_steps)
        .field("drift_steps", v.drift_steps)
        .field("backup_codes_left", v.backup_codes_left);
    if g.quiet {
        return report;
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
    // Worth a word only when the phone is off, by more than the account's
    // learned drift explains. (A phone back on time, offset 0, is no news:
    // the learned drift follows it.)
    if let (Some(offset), Some(period)) = (
        v.offset_steps
            .filter(|o| *o != 0 && Some(*o) != v.drift_steps),
        v.period,
    ) {
        report = report.line(format!(
            "Note: the code matched {} s {} the server clock; check the time on phone and server if this persists.",
            offset.abs() * i64::from(period),
            if offset < 0 { "behind" } else { "ahead of" }
        ));
    }
    if v.method == Method::BackupCode && v.backup_codes_left <= 2 {
        report = report.line(format!(
            "Few backup codes left: make new ones with mb-2fa-backup-codes --email {email}"
        ));
    }
    report
}

fn resync(m: &ArgMatches, g: &Globals, email: &Email, raw: Vec<&OsString>) -> Result<Report> {
    if raw.iter().filter(|v| v.as_os_str() == "-").count() > 1 {
        return Err(Error::usage(
            "--resync: only one of the two codes can be read from stdin",
        ));
    }
    let mut codes = Vec::with_capacity(2);
    for v in raw {
        match Code::parse(&cli::secret_value(v, "code")?)? {
            Code::Totp(digits) => codes.push(digits),
            Code::Backup(_) => {
                return Err(Error::usage(
                    "malformed code: --resync takes two 6-digit codes from the app, not backup codes",
                ));
            }
        }
    }
    let (Some(first), Some(second)) = (codes.first(), codes.get(1)) else {
        return Err(Error::usage("--resync takes two codes"));
    };
    let mut store = cli::open_unlocked(m, g)?;
    let ctx = Ctx::new(&SystemClock, "mb-2fa-verify");
    let r = account::resync(&mut store, &ctx, email, first, second)?;
    let report = Report::new()
        .field("email", email.as_str())
        .field("resynced", true)
        .field("drift_steps", r.drift_steps)
        .field("activated", r.activated);
    if g.quiet {
        return Ok(report);
    }
    let span = skew::describe_seconds(r.drift_steps * i64::from(r.period));
    let where_ = match r.drift_steps {
        0 => "in step with the server".to_string(),
        d if d < 0 => format!("about {span} behind the server"),
        _ => format!("about {span} ahead of the server"),
    };
    let mut report = report.line(format!(
        "Resynchronised {email}: the phone is {where_} (drift {:+} steps); its next codes verify normally.",
        r.drift_steps
    ));
    if r.activated {
        report = report.line(format!("2FA is now active for {email}."));
    }
    Ok(report)
}

fn diagnosis_report(g: &Globals, email: &Email, d: &Diagnosis) -> Report {
    let offset = d.finding.offset_steps();
    let report = Report::new()
        .field("email", email.as_str())
        .field("server_time", clock::rfc3339(d.server_time))
        .field("ntp_synchronized", d.ntp.as_str())
        .field("state", d.state.as_str())
        .field("drift_steps", d.drift_steps)
        .field("failed_attempts", d.failed_attempts)
        .field("locked_until", cli::json_time(d.locked_until))
        .field("finding", d.finding.as_str())
        .field("offset_steps", offset)
        .field("offset_seconds", offset.map(|o| o * i64::from(d.period)))
        .field("search_minutes", d.range_minutes)
        .field("would_accept", d.would_accept)
        .field("advice", d.advice.as_str());
    if g.quiet {
        return report.line(&d.advice);
    }
    let ntp = match d.ntp.as_str() {
        "yes" => "NTP synchronised: yes",
        "no" => "NTP synchronised: NO; fix the server clock first: timedatectl set-ntp true",
        _ => "NTP synchronised: unknown, no timedatectl here; check chrony or ntpd",
    };
    let lock = match d.locked_until {
        Some(t) => format!("locked until {}", clock::rfc3339(t)),
        None => "not locked".to_string(),
    };
    report
        .line(format!(
            "Diagnosis for {email} (nothing accepted or spent):"
        ))
        .line(format!(
            "  server time   {}, {ntp}",
            clock::rfc3339(d.server_time)
        ))
        .line(format!(
            "  enrollment    {}, drift {:+} steps, {lock}, {} recent failed attempts",
            d.state.as_str(),
            d.drift_steps,
            d.failed_attempts
        ))
        .line(format!(
            "  code          {}{}",
            d.finding.as_str(),
            offset.map_or_else(String::new, |o| format!(
                " at {o:+} steps ({:+} s)",
                o * i64::from(d.period)
            ))
        ))
        .line(format!(
            "  verify now    {}",
            if d.would_accept {
                "would accept it"
            } else {
                "would reject it"
            }
        ))
        .line(format!("  meaning       {}", d.advice))
}
