//! `mb-2fa-policy`: enforcement. Show and set the policy, exempt service and
//! break-glass accounts, seal a used break-glass account, and answer a login
//! front end's one question: "this account is logging in: what now?"

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use mb2fa_core::account::Ctx;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::{self, SystemClock};
use mb2fa_core::policy::{self, Changes, Decision, Kind, Policy};
use mb2fa_core::{Error, Result, uri};
use serde_json::{Value, json};

const TOOL: &str = "mb-2fa-policy";

pub fn command() -> Command {
    cli::command(
        TOOL,
        "Enforce 2FA: require it, a grace period, exemptions, a sealed break-glass account, and the login decision",
    )
    .subcommand_required(true)
    .subcommand(Command::new("show").about("Show the policy, the exemptions and any warnings"))
    .subcommand(
        Command::new("set")
            .about("Change the policy (each change is audited with its old and new value)")
            .arg(
                Arg::new("require-all")
                    .long("require-all")
                    .value_name("on|off")
                    .value_parser(["on", "off"])
                    .help("Require 2FA for every account (switching on starts the grace period)"),
            )
            .arg(
                Arg::new("grace-days")
                    .long("grace-days")
                    .value_name("N")
                    .value_parser(value_parser!(i64).range(0..=policy::MAX_GRACE_DAYS))
                    .help("Days an account may log in without 2FA once required [default: 7]"),
            )
            .arg(
                Arg::new("mandatory-role")
                    .long("mandatory-role")
                    .value_name("ROLE")
                    .action(ArgAction::Append)
                    .conflicts_with("no-mandatory-roles")
                    .help("Role with no grace at all (repeat for several; replaces the list) [default: super-admin]"),
            )
            .arg(
                Arg::new("no-mandatory-roles")
                    .long("no-mandatory-roles")
                    .action(ArgAction::SetTrue)
                    .help("Give every role the grace period"),
            )
            .arg(
                Arg::new("issuer")
                    .long("issuer")
                    .value_name("NAME")
                    .help("Default issuer shown in authenticator apps for new enrollments"),
            ),
    )
    .subcommand(
        Command::new("exempt")
            .about("Exempt an account from 2FA: a service account, or the break-glass account")
            .arg(cli::email_arg())
            .arg(
                Arg::new("kind")
                    .long("kind")
                    .required(true)
                    .value_parser(["service", "break-glass"])
                    .help("service, or break-glass (every use is alerted until sealed again)"),
            )
            .arg(
                Arg::new("reason")
                    .long("reason")
                    .value_name("TEXT")
                    .required(true)
                    .help("Why (recorded in the audit trail)"),
            ),
    )
    .subcommand(
        Command::new("unexempt")
            .about("Remove an exemption")
            .arg(cli::email_arg()),
    )
    .subcommand(
        Command::new("seal")
            .about("Re-arm a used break-glass account, after rotating its password")
            .arg(cli::email_arg()),
    )
    .subcommand(
        Command::new("check")
            .about("The login decision: exit 0 ask for a code, 6 let in, 7 keep out, 10 fail closed")
            .arg(cli::email_arg())
            .arg(
                Arg::new("role")
                    .long("role")
                    .value_name("ROLE")
                    .action(ArgAction::Append)
                    .help("A role of the account (repeatable), e.g. super-admin"),
            ),
    )
    .after_help(
        "Examples:\n  sudo mb-2fa-policy set --require-all on --grace-days 7 --issuer \"Mailborder - example.com\"\n  \
         sudo mb-2fa-policy exempt --email breakglass@example.com --kind break-glass --reason \"sealed envelope in the safe\"\n  \
         mb-2fa-policy check --email alice@example.com --role super-admin --json\n\n\
         check decisions: code (exit 0), allow and setup (exit 6), deny (exit 7); storage errors exit 10.\n\
         A front end must treat EVERY exit status other than 0 and 6 as deny (see packaging/examples/login-check.sh).",
    )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let ctx = Ctx::new(&SystemClock, TOOL);
    match m.subcommand() {
        Some(("show", _)) => show(g),
        Some(("set", sub)) => set(sub, g, &ctx),
        Some(("exempt", sub)) => {
            let email = cli::email(sub)?;
            let kind = sub
                .get_one::<String>("kind")
                .and_then(|k| Kind::parse(k))
                .ok_or_else(|| Error::usage("--kind must be service or break-glass"))?;
            let reason =
                policy::parse_reason(sub.get_one::<String>("reason").map_or("", String::as_str))?;
            let mut store = cli::open_store(g)?;
            let e = policy::exempt(&mut store, &ctx, &email, kind, &reason)?;
            let report = Report::new()
                .field("email", email.as_str())
                .field("exemption", cli::exemption_json(&e));
            Ok(unless_quiet(g, report, || {
                format!("{email} is exempt from 2FA as a {} account.", e.kind)
            }))
        }
        Some(("unexempt", sub)) => {
            let email = cli::email(sub)?;
            let mut store = cli::open_store(g)?;
            let old = policy::unexempt(&mut store, &ctx, &email)?;
            let report = Report::new()
                .field("email", email.as_str())
                .field("removed", cli::exemption_json(&old));
            Ok(unless_quiet(g, report, || {
                format!(
                    "{email} is no longer exempt (it was a {} account).",
                    old.kind
                )
            }))
        }
        Some(("seal", sub)) => {
            let email = cli::email(sub)?;
            let mut store = cli::open_store(g)?;
            let e = policy::seal(&mut store, &ctx, &email)?;
            let report = Report::new()
                .field("email", email.as_str())
                .field("exemption", cli::exemption_json(&e));
            Ok(unless_quiet(g, report, || {
                format!("Break-glass account {email} is sealed again.")
            }))
        }
        Some(("check", sub)) => check(sub, g, &ctx),
        _ => Err(Error::usage(
            "a subcommand is required: show, set, exempt, unexempt, seal or check (see --help)",
        )),
    }
}

/// A confirmation line, which `-q` leaves out.
fn unless_quiet(g: &Globals, report: Report, line: impl FnOnce() -> String) -> Report {
    if g.quiet { report } else { report.line(line()) }
}

fn policy_json(p: &Policy) -> Value {
    json!({
        "require_all": p.require_all,
        "require_all_since": cli::json_time(p.since.filter(|_| p.require_all)),
        "grace_days": p.grace_days,
        "mandatory_roles": p.mandatory_roles,
        "issuer": p.issuer,
    })
}

fn policy_lines(mut report: Report, p: &Policy) -> Report {
    let required = if p.require_all {
        format!("on (since {})", cli::human_time(p.since))
    } else {
        "off".to_string()
    };
    let roles = if p.mandatory_roles.is_empty() {
        "(none)".to_string()
    } else {
        p.mandatory_roles.join(", ")
    };
    report = report
        .line(format!("require-all      {required}"))
        .line(format!("grace-days       {}", p.grace_days))
        .line(format!("mandatory-roles  {roles} (no grace)"))
        .line(format!("issuer           {}", p.issuer));
    report
}

fn show(g: &Globals) -> Result<Report> {
    let mut store = cli::open_store(g)?;
    let p = policy::current(&mut store)?;
    let exemptions = policy::exemptions(&mut store)?;
    let warnings = policy::warnings(&p, &exemptions);
    let mut report = Report::new()
        .field("policy", policy_json(&p))
        .field(
            "exemptions",
            exemptions
                .iter()
                .map(cli::exemption_json)
                .collect::<Vec<_>>(),
        )
        .field("warnings", warnings.clone());
    report = policy_lines(report, &p);
    if g.quiet {
        // The policy itself; the exemptions and warnings are for people.
        return Ok(report);
    }
    if exemptions.is_empty() {
        report = report.line("exemptions       (none)");
    } else {
        report = report.line("").line("Exemptions:");
        let mut table = cli::table(&["EMAIL", "KIND", "SINCE (UTC)", "BY", "USED", "REASON"]);
        for e in &exemptions {
            table.add_row(vec![
                e.email.clone(),
                e.kind.to_string(),
                cli::short_time(Some(e.created_at)),
                e.created_by.clone(),
                e.used_at.map_or_else(
                    || "-".to_string(),
                    |t| format!("USED {}", cli::short_time(Some(t))),
                ),
                e.reason.clone(),
            ]);
        }
        report = cli::push_table(report, &mut table);
    }
    for w in &warnings {
        report = report.line(format!("warning: {w}"));
    }
    Ok(report)
}

fn set(m: &ArgMatches, g: &Globals, ctx: &Ctx<'_>) -> Result<Report> {
    let roles = if m.get_flag("no-mandatory-roles") {
        Some(Vec::new())
    } else {
        match m.get_many::<String>("mandatory-role") {
            Some(rs) => Some(
                rs.map(|r| policy::parse_role(r))
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        }
    };
    let changes = Changes {
        require_all: m.get_one::<String>("require-all").map(|v| v == "on"),
        grace_days: m.get_one::<i64>("grace-days").copied(),
        mandatory_roles: roles,
        issuer: m
            .get_one::<String>("issuer")
            .map(|i| uri::parse_issuer(i))
            .transpose()?,
    };
    if changes.require_all.is_none()
        && changes.grace_days.is_none()
        && changes.mandatory_roles.is_none()
        && changes.issuer.is_none()
    {
        return Err(Error::usage(
            "nothing to set: give --require-all, --grace-days, --mandatory-role, --no-mandatory-roles or --issuer",
        ));
    }
    let mut store = cli::open_store(g)?;
    let p = policy::set(&mut store, ctx, &changes)?;
    let exemptions = policy::exemptions(&mut store)?;
    let warnings = policy::warnings(&p, &exemptions);
    let report = Report::new()
        .field("policy", policy_json(&p))
        .field("warnings", warnings.clone());
    if g.quiet {
        return Ok(report);
    }
    let mut report = policy_lines(report, &p);
    for w in &warnings {
        report = report.line(format!("warning: {w}"));
    }
    Ok(report)
}

fn check(m: &ArgMatches, g: &Globals, ctx: &Ctx<'_>) -> Result<Report> {
    let email = cli::email(m)?;
    let roles = match m.get_many::<String>("role") {
        Some(rs) => rs
            .map(|r| policy::parse_role(r))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    // Fail closed: no database means we cannot know, which is exit 10.
    let mut store = cli::open_store(g)?;
    let c = policy::check(&mut store, ctx, &email, &roles)?;
    let mut report = Report::new()
        .field("email", email.as_str())
        .field("decision", c.decision.as_str())
        .field("enrollment", c.enrolled.map(|s| s.as_str()))
        .field("exemption", c.exemption.map(Kind::as_str))
        .exit(c.decision.exit_code());
    report = match &c.decision {
        Decision::Code => report.line(format!("code: ask {email} for a code, then run mb-2fa-verify")),
        Decision::Allow { reason } => report
            .field("reason", reason.as_str())
            .line(format!("allow: {email} needs no code ({reason})")),
        Decision::Setup {
            deadline,
            grace_days_left,
        } => report
            .field("grace_days_left", *grace_days_left)
            .field("deadline", clock::rfc3339(*deadline))
            .line(format!(
                "setup: let {email} in and prompt to enroll; {grace_days_left} day(s) left, until {}",
                clock::rfc3339(*deadline)
            )),
        Decision::Deny { reason } => report
            .field("reason", reason.as_str())
            .line(format!("deny: {email} may not log in ({reason})")),
    };
    if g.quiet {
        report.human = format!("{}\n", c.decision.as_str());
    }
    Ok(report)
}
