//! `mb-2fa-store`: the store itself. `init` creates it on purpose (no other
//! tool but the first enrollment on a fresh appliance ever creates one),
//! `check` says whether it can be trusted, `seal-plaintext` seals a version 1
//! database once, `backup` copies an SQLite store (`backup.rs`).

mod backup;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use mb2fa_core::account::Ctx;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;
use mb2fa_core::maintenance;
use mb2fa_core::{Error, Result};
use serde_json::json;

mod rekey;

const TOOL: &str = "mb-2fa-store";

pub fn command() -> Command {
    cli::command(
        TOOL,
        "Create and check the 2FA store, and seal a version 1 database once",
    )
    .long_about(
        "Create and check the 2FA store.\n\n\
         init: create a new, empty database (directory 0700, file 0600) and record the key \
         (created if missing). Refuses if a database exists. Only this and the first enrollment \
         on a fresh appliance (no key file, no database) create a store: a tool that finds the key \
         but no database says the database was lost (exit 10).\n\n\
         check: one line per check (file owner and mode, schema version, the store's integrity check, the key \
         matches the recorded fingerprint, every secret opens); exit 10 if any fails.\n\n\
         copy --to PATH|URL: copy every row (sealed secrets as they are, replay floors, lockouts, \
         policy, exemptions, the audit trail) into another store, SQLite to MariaDB or back, in one \
         transaction on the target; refuses a target that holds accounts unless --force. The \
         target needs the same key file.\n\n\
         seal-plaintext: seal the plaintext secrets of a version 1 database (mb-2fa built from \
         source before secrets were sealed), once, in one audited transaction. Refused when the \
         database already records a key or any secret already looks sealed.",
    )
    .subcommand_required(true)
    .arg(cli::key_file_arg().global(true))
    .subcommand(Command::new("init").about("Create a new, empty store (refuses if one exists)"))
    .subcommand(Command::new("check").about("Check that the store can be trusted (exit 10 if not)"))
    .subcommand(
        Command::new("copy")
            .about("Copy every row of this store into another (SQLite to MariaDB and back)")
            .arg(
                clap::Arg::new("to")
                    .long("to")
                    .value_name("PATH|URL")
                    .required(true)
                    .value_parser(clap::value_parser!(OsString))
                    .help("The target store: an SQLite file or a mariadb:// URL (created if absent)"),
            )
            .arg(
                clap::Arg::new("force")
                    .long("force")
                    .action(clap::ArgAction::SetTrue)
                    .help("Replace the accounts of a target that has some (its audit trail is kept)"),
            ),
    )
    .subcommand(backup::command())
    .subcommand(rekey::command())
    .subcommand(
        Command::new("seal-plaintext")
            .about("Seal the plaintext secrets of a version 1 database, once"),
    )
    .after_help(
        "Examples:\n  sudo mb-2fa-store init\n  sudo mb-2fa-store check\n  sudo mb-2fa-store check --json\n  sudo mb-2fa-store backup /root/2fa-backup-$(date +%F).db\n  sudo mb-2fa-store rekey\n  sudo mb-2fa-store rekey --finish\n  sudo mb-2fa-store copy --to 'mariadb://mb2fa@db.example.com/mailborder?password_file=/etc/mailborder/2fa-db.password'",
    )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    match m.subcommand() {
        Some(("init", sub)) => init(sub, g),
        Some(("check", sub)) => check(sub, g),
        Some(("seal-plaintext", sub)) => seal(sub, g),
        Some(("copy", sub)) => copy(sub, g),
        Some(("backup", sub)) => backup::run(sub, g),
        Some(("rekey", sub)) => rekey::execute(sub, g),
        _ => Err(Error::usage(
            "a subcommand is required: init, check, copy, backup or seal-plaintext",
        )),
    }
}

fn init(_m: &ArgMatches, g: &Globals) -> Result<Report> {
    let key = g.key_file.clone();
    let mut store = maintenance::init(&g.db, &key)?;
    let fp = mb2fa_core::keyring::recorded_fingerprint(&mut store)?.unwrap_or_default();
    let report = Report::new()
        .field("db", g.db.to_string())
        .field("key_file", key.display().to_string())
        .field("key_fingerprint", fp.clone());
    if g.quiet {
        return Ok(report);
    }
    Ok(report
        .line(format!(
            "Created an empty 2FA store at {} with key {} ({fp}).",
            g.db,
            key.display()
        ))
        .line("Back up the key file: without it no secret can be opened."))
}

fn check(_m: &ArgMatches, g: &Globals) -> Result<Report> {
    let key = g.key_file.clone();
    let checks = maintenance::check(&g.db, &key);
    let failed = checks.iter().filter(|c| !c.ok).count();
    let mut report = Report::new().field(
        "checks",
        checks
            .iter()
            .map(|c| json!({"name": c.name, "ok": c.ok, "warning": c.warning, "detail": c.detail}))
            .collect::<Vec<_>>(),
    );
    // With -q only the failures are said.
    for c in checks.iter().filter(|c| !g.quiet || !c.ok || c.warning) {
        let mark = match (c.ok, c.warning) {
            (false, _) => "FAIL",
            (true, true) => "WARN",
            (true, false) => "ok  ",
        };
        report = report.line(format!("{mark} {:<9} {}", c.name, c.detail));
    }
    report = report.field("healthy", failed == 0);
    if failed > 0 {
        // Like `policy check`'s deny: the answer is the exit code, and the
        // lines above say which check failed and how to fix it.
        report = report.exit(10);
    }
    Ok(report)
}

fn copy(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let raw = m
        .get_one::<OsString>("to")
        .ok_or_else(|| Error::usage("--to is required"))?;
    let to = raw
        .to_str()
        .ok_or_else(|| Error::usage("--to is not valid UTF-8"))
        .and_then(|s| mb2fa_core::store::Location::parse(s, "--to"))?;
    let mut store = cli::open_store(g)?;
    let ctx = Ctx::new(&SystemClock, TOOL);
    let n = maintenance::copy(&mut store, &to, m.get_flag("force"), &ctx)?;
    let report = Report::new()
        .field("from", g.db.to_string())
        .field("to", to.to_string())
        .field(
            "copied",
            json!({
                "accounts": n.accounts,
                "backup_codes": n.backup_codes,
                "settings": n.settings,
                "exemptions": n.exemptions,
                "first_seen": n.first_seen,
                "audit": n.audit,
            }),
        );
    if g.quiet {
        return Ok(report);
    }
    Ok(report
        .line(format!(
            "Copied {} account(s), {} backup code(s), {} setting(s), {} exemption(s), {} first-seen time(s) and {} audit record(s) from {} to {to}.",
            n.accounts, n.backup_codes, n.settings, n.exemptions, n.first_seen, n.audit, g.db
        ))
        .line("The secrets are sealed with the same key: every node that uses the target needs the same key file."))
}

fn seal(_m: &ArgMatches, g: &Globals) -> Result<Report> {
    let key = g.key_file.clone();
    let mut store = cli::open_store(g)?;
    let ctx = Ctx::new(&SystemClock, TOOL);
    let n = maintenance::seal_plaintext(&mut store, &ctx, &key)?;
    let report = Report::new()
        .field("sealed", n)
        .field("key_file", key.display().to_string());
    if g.quiet {
        return Ok(report);
    }
    Ok(report.line(format!(
        "Sealed {n} plaintext secret(s) with key {}. Back up the key file.",
        key.display()
    )))
}
