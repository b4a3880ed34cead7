//! `mb-2fa-audit`: the audit trail (every enrollment, verification outcome,
//! removal, regeneration and unlock, with who did it), newest first.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command, value_parser};
use mb2fa_core::audit::Record;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::{self, Clock, SystemClock};
use mb2fa_core::{Result, account};
use serde_json::{Value, json};

pub fn command() -> Command {
    cli::command("mb-2fa-audit", "Show the audit trail of the mb-2fa tools, newest first")
        .long_about(
            "Show the audit trail: when, which tool, which action, which account, the outcome, \
             who ran it (SUDO_USER, else the user) and a short detail. Records hold no secrets \
             and no codes. The same records go to syslog (auth facility, identifier mb-2fa).",
        )
        .arg(
            Arg::new("email")
                .long("email")
                .value_name("EMAIL")
                .value_parser(value_parser!(OsString))
                .help("Only records about this account"),
        )
        .arg(
            Arg::new("since")
                .long("since")
                .value_name("WHEN")
                .help("Only records from this time on: 2026-11-28T09:00:00Z, or a span back like 24h or 7d"),
        )
        .arg(
            Arg::new("limit")
                .long("limit")
                .value_name("N")
                .value_parser(value_parser!(u32).range(1..=1_000_000))
                .default_value("50")
                .help("At most N records"),
        )
        .after_help(
            "Examples:\n  sudo mb-2fa-audit --email alice@example.com --since 7d\n  \
             sudo mb-2fa-audit --json --limit 1000 | jq '.records[] | select(.outcome == \"locked\")'",
        )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = match m.get_one::<OsString>("email") {
        Some(_) => Some(cli::email(m)?),
        None => None,
    };
    let since = match m.get_one::<String>("since") {
        Some(s) => Some(clock::parse_since(s, SystemClock.now()?)?),
        None => None,
    };
    let limit = m.get_one::<u32>("limit").copied().unwrap_or(50);
    let mut store = cli::open_store(g)?;
    let records = account::audit_log(&mut store, email.as_ref(), since, limit)?;
    let mut report = Report::new().field(
        "records",
        records.iter().map(to_json).collect::<Vec<Value>>(),
    );
    if records.is_empty() {
        if !g.quiet {
            report = report.line("No audit records match.");
        }
        return Ok(report);
    }
    // With -q the records alone, without the header.
    let header: &[&str] = if g.quiet {
        &[]
    } else {
        &[
            "TIME (UTC)",
            "TOOL",
            "ACTION",
            "EMAIL",
            "OUTCOME",
            "ACTOR",
            "DETAIL",
        ]
    };
    let mut table = cli::table(header);
    for r in &records {
        table.add_row(vec![
            clock::rfc3339(r.at)
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_string(),
            r.tool.trim_start_matches("mb-2fa-").to_string(),
            r.action.as_str().to_string(),
            r.email.clone().unwrap_or_else(|| "-".to_string()),
            r.outcome.as_str().to_string(),
            r.actor.clone(),
            r.detail.clone(),
        ]);
    }
    Ok(cli::push_table(report, &mut table))
}

fn to_json(r: &Record) -> Value {
    json!({
        "at": clock::rfc3339(r.at),
        "tool": r.tool,
        "action": r.action.as_str(),
        "email": r.email,
        "outcome": r.outcome.as_str(),
        "actor": r.actor,
        "detail": r.detail,
        "node": r.node,
        "via": r.via,
    })
}
