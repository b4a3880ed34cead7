//! `mb-2fa-list`: who has 2FA, in a table (or JSON for scripts).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use comfy_table::{CellAlignment, Table};
use mb2fa_core::Result;
use mb2fa_core::account;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::{Clock, SystemClock};
use mb2fa_core::store::{AccountSummary, OpenMode, Store};
use mb2fa_core::{policy, throttle};
use serde_json::{Value, json};

pub fn command() -> Command {
    cli::command(
        "mb-2fa-list",
        "List the accounts that have 2FA, with their state",
    )
    .long_about(
        "List the accounts that have 2FA: state (pending until the first code is verified, \
             then active), when they enrolled and activated, last use, backup codes left, learned \
             clock drift and lockout. Times are UTC.",
    )
    .after_help("Examples:\n  sudo mb-2fa-list\n  mb-2fa-list --json | jq '.accounts[].email'")
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(_m: &ArgMatches, g: &Globals) -> Result<Report> {
    let mut store = Store::open(&g.db, OpenMode::MustExist)?;
    let now = SystemClock.now()?;
    let mut accounts = account::list(&mut store)?;
    // A lock that has run out is no lock: show none.
    for a in &mut accounts {
        if !throttle::is_locked(a.locked_until, now) {
            a.locked_until = None;
        }
    }
    let exemptions = policy::exemptions(&mut store)?;
    let exempt_kind = |email: &str| {
        exemptions
            .iter()
            .find(|e| e.email == email)
            .map(|e| e.kind.clone())
    };
    let mut report = Report::new()
        .field(
            "accounts",
            accounts
                .iter()
                .map(|a| {
                    let mut v = to_json(a);
                    v["exemption"] = exempt_kind(&a.email).map_or(Value::Null, Value::String);
                    v
                })
                .collect::<Vec<Value>>(),
        )
        .field(
            "exemptions",
            exemptions
                .iter()
                .map(cli::exemption_json)
                .collect::<Vec<Value>>(),
        );
    if g.quiet {
        for a in &accounts {
            report = report.line(&a.email);
        }
    } else {
        if accounts.is_empty() {
            report = report
                .line("No accounts have 2FA yet. Enroll one with: mb-2fa-enable --email EMAIL");
        } else {
            report = cli::push_table(report, &mut table(&accounts));
        }
        if !exemptions.is_empty() {
            report = report.line("").line("Exempt from 2FA:");
            let mut t = cli::table(&["EMAIL", "KIND", "STATUS", "REASON"]);
            for e in &exemptions {
                let status = match e.used_at {
                    Some(t) => format!(
                        "USED since {}: rotate its password, then seal",
                        cli::short_time(Some(t))
                    ),
                    None if e.kind == "break-glass" => "sealed".to_string(),
                    None => "-".to_string(),
                };
                t.add_row(vec![
                    e.email.clone(),
                    e.kind.clone(),
                    status,
                    e.reason.clone(),
                ]);
            }
            report = cli::push_table(report, &mut t);
        }
    }
    Ok(report)
}

fn to_json(a: &AccountSummary) -> Value {
    json!({
        "email": a.email,
        "state": a.state.as_str(),
        "issuer": a.issuer,
        "created_at": cli::json_time(Some(a.created_at)),
        "activated_at": cli::json_time(a.activated_at),
        "last_used_at": cli::json_time(a.last_used_at),
        "backup_codes_left": a.backup_codes_left,
        "drift_steps": a.drift_steps,
        "failed_attempts": a.failed_attempts,
        "locked_until": cli::json_time(a.locked_until),
    })
}

fn table(accounts: &[AccountSummary]) -> Table {
    let mut table = cli::table(&[
        "EMAIL",
        "STATE",
        "ENROLLED (UTC)",
        "ACTIVATED",
        "LAST USED",
        "BACKUP",
        "DRIFT",
        "LOCKED UNTIL",
    ]);
    for a in accounts {
        let drift = match a.drift_steps {
            0 => "0".to_string(),
            d => format!("{d:+} ({:+} s)", d.saturating_mul(30)),
        };
        table.add_row(vec![
            a.email.clone(),
            a.state.as_str().to_string(),
            cli::short_time(Some(a.created_at)),
            cli::short_time(a.activated_at),
            cli::short_time(a.last_used_at),
            a.backup_codes_left.to_string(),
            drift,
            cli::short_time(a.locked_until),
        ]);
    }
    if let Some(col) = table.column_mut(5) {
        col.set_cell_alignment(CellAlignment::Right);
    }
    table
}
