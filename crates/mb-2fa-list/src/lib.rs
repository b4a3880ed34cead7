//! `mb-2fa-list`: who has 2FA, in a table (or JSON for scripts).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use comfy_table::{CellAlignment, Table};
use mb2fa_core::Result;
use mb2fa_core::account;
use mb2fa_core::cli::{self, Globals, Report, Stream};
use mb2fa_core::clock::{Clock, SystemClock, rfc3339};
use mb2fa_core::model::{AccountSummary, Exemption, ExemptionKind};
use serde::Serialize;
use serde_json::Value;

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
    cli::run_streaming(command(), args, execute)
}

/// With `--json` and `-q` the accounts are written as they are read (one
/// snapshot, memory flat however many there are); the table for people
/// needs them all for its column widths.
///
/// Should a row turn out damaged midway, the run ends with exit 10 and the
/// error: as the only output if nothing had left yet, else on stderr after
/// the part already written, so a `--json` document is then incomplete (see
/// `cli::run_streaming`).
fn execute(_m: &ArgMatches, g: &Globals, out: &mut Stream) -> Result<Report> {
    let mut store = cli::open_store(g)?;
    let now = SystemClock.now()?;
    if g.json {
        let exemptions = out.json_array("accounts", |accounts| {
            account::list_each(&mut store, now, |a, exemption| {
                accounts.push(&to_json(&a, exemption))
            })
        })?;
        return Ok(Report::new().field(
            "exemptions",
            exemptions
                .iter()
                .map(cli::exemption_json)
                .collect::<Vec<Value>>(),
        ));
    }
    if g.quiet {
        account::list_each(&mut store, now, |a, _| out.line(&a.email))?;
        return Ok(Report::new());
    }
    let mut accounts = Vec::new();
    let exemptions = account::list_each(&mut store, now, |a, _| {
        accounts.push(a);
        Ok(())
    })?;
    let mut report = Report::new();
    if accounts.is_empty() {
        report =
            report.line("No accounts have 2FA yet. Enroll one with: mb-2fa-enable --email EMAIL");
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
                None if e.kind == ExemptionKind::BreakGlass => "sealed".to_string(),
                None => "-".to_string(),
            };
            t.add_row(vec![
                e.email.clone(),
                e.kind.to_string(),
                status,
                e.reason.clone(),
            ]);
        }
        report = cli::push_table(report, &mut t);
    }
    Ok(report)
}

/// One account in `--json`: the keys in this order, times RFC 3339 or null
/// (as `cli::json_time`). A struct, not a `Value`: no map built per account.
#[derive(Serialize)]
struct AccountJson<'a> {
    email: &'a str,
    state: &'static str,
    issuer: &'a str,
    created_at: String,
    activated_at: Option<String>,
    last_used_at: Option<String>,
    backup_codes_left: u32,
    drift_steps: i64,
    failed_attempts: i64,
    locked_until: Option<String>,
    exemption: Option<&'a str>,
}

fn to_json<'a>(a: &'a AccountSummary, exemption: Option<&'a Exemption>) -> AccountJson<'a> {
    AccountJson {
        email: &a.email,
        state: a.state.as_str(),
        issuer: &a.issuer,
        created_at: rfc3339(a.created_at),
        activated_at: a.activated_at.map(rfc3339),
        last_used_at: a.last_used_at.map(rfc3339),
        backup_codes_left: a.backup_codes_left,
        drift_steps: a.drift_steps,
        failed_attempts: a.failed_attempts,
        locked_until: a.locked_until.map(rfc3339),
        exemption: exemption.map(|e| e.kind.as_str()),
    }
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
            d => format!("{d:+} ({:+} s)", d.saturating_mul(i64::from(a.period))),
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
