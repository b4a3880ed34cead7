//! `mb-2fa-list`: who has 2FA, in a table (or JSON for scripts).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use comfy_table::{CellAlignment, ContentLineStyle, LineStyle, Table, TableStyle};
use mb2fa_core::Result;
use mb2fa_core::account;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::rfc3339;
use mb2fa_core::store::{AccountSummary, OpenMode, Store};
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
    let accounts = account::list(&mut store)?;
    let mut report = Report::new().field(
        "accounts",
        accounts.iter().map(to_json).collect::<Vec<Value>>(),
    );
    if g.quiet {
        for a in &accounts {
            report = report.line(&a.email);
        }
    } else if accounts.is_empty() {
        report =
            report.line("No accounts have 2FA yet. Enroll one with: mb-2fa-enable --email EMAIL");
    } else {
        for line in table(&accounts).lines() {
            report = report.line(line.trim_end());
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
        "locked_until": cli::json_time(a.locked_until),
    })
}

/// `2026-11-28 09:30`: minutes are enough in a table, and it stays narrow.
fn short_time(t: Option<i64>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| rfc3339(t).replace('T', " ").chars().take(16).collect(),
    )
}

fn table(accounts: &[AccountSummary]) -> Table {
    let mut table = Table::new();
    // Columns and a rule under the header: narrow, greppable, plain ASCII.
    let style = TableStyle::new()
        .header_lines(ContentLineStyle::none().junction(' '))
        .header_separator(LineStyle::none().fill('-').junction(' '))
        .content_lines(ContentLineStyle::none().junction(' '));
    table.load_style(style).set_header(vec![
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
            d => format!("{d:+} ({:+} s)", d * 30),
        };
        table.add_row(vec![
            a.email.clone(),
            a.state.as_str().to_string(),
            short_time(Some(a.created_at)),
            short_time(a.activated_at),
            short_time(a.last_used_at),
            a.backup_codes_left.to_string(),
            drift,
            short_time(a.locked_until),
        ]);
    }
    for col in table.column_iter_mut() {
        col.set_padding((0, 1));
    }
    if let Some(col) = table.column_mut(5) {
        col.set_cell_alignment(CellAlignment::Right);
    }
    table
}
