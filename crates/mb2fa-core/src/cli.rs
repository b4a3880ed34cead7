//! Command-line plumbing shared by every tool: the global options, one JSON
//! document or human text on stdout, one-line errors on stderr, exit codes,
//! reading secrets from stdin, and confirmation prompts.
//!
//! Each tool crate builds its `clap::Command` on [`command`] and hands its
//! work to [`run`]; nothing here knows about any single tool.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::email::Email;
use crate::error::{Error, Result};
use crate::key_file::DEFAULT_KEY_PATH;
use crate::store::{DEFAULT_DB_PATH, OpenMode, Store};

/// The options every tool takes.
#[derive(Debug, Clone)]
pub struct Globals {
    pub db: PathBuf,
    pub json: bool,
    pub quiet: bool,
}

/// What a tool prints on success: fields for `--json` (beside `"ok": true`)
/// and text for people.
#[derive(Debug, Default)]
pub struct Report {
    pub json: Map<String, Value>,
    pub human: String,
    /// Exit code of a successful run (non-zero only for answers that are
    /// exit codes by design, like a login decision).
    pub exit: u8,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.json.insert(key.to_string(), value.into());
        self
    }

    pub fn line(mut self, text: impl AsRef<str>) -> Report {
        self.human.push_str(text.as_ref());
        self.human.push('\n');
        self
    }

    pub fn exit(mut self, code: u8) -> Report {
        self.exit = code;
        self
    }

    pub fn text(mut self, text: impl AsRef<str>) -> Report {
        self.human.push_str(text.as_ref());
        self
    }
}

/// A tool's `Command` with the global options already on it.
pub fn command(name: &'static str, about: &'static str) -> Command {
    Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .arg(
            Arg::new("db")
                .long("db")
                .value_name("PATH")
                .env("MB2FA_DB")
                .default_value(DEFAULT_DB_PATH)
                .value_parser(value_parser!(PathBuf))
                .global(true)
                .help("SQLite database shared by all mb-2fa tools"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Print exactly one JSON document on stdout, on success and on failure"),
        )
        .arg(
            Arg::new("quiet")
                .short('q')
                .long("quiet")
                .action(ArgAction::SetTrue)
                .global(true)
                .help("Print only the essential result (errors still go to stderr)"),
        )
}

/// `--email E`, required. Parsed by [`email`] so that a bad address gets our
/// one-line message, not clap's.
pub fn email_arg() -> Arg {
    Arg::new("email")
        .long("email")
        .value_name("EMAIL")
        .required(true)
        .value_parser(value_parser!(OsString))
        .help("Account (email address); trimmed and lower-cased")
}

/// `--key-file PATH` (or `MB2FA_KEY_FILE`), for the tools that touch secrets.
pub fn key_file_arg() -> Arg {
    Arg::new("key-file")
        .long("key-file")
        .value_name("PATH")
        .env("MB2FA_KEY_FILE")
        .default_value(DEFAULT_KEY_PATH)
        .value_parser(value_parser!(PathBuf))
        .help("Key that seals the TOTP secrets (created with the first enrollment, mode 0400)")
}

/// Open the database and load the key: what every tool that reads or
/// writes a secret does first.
pub fn open_unlocked(m: &ArgMatches, g: &Globals, mode: OpenMode) -> Result<Store> {
    let mut store = Store::open(&g.db, mode)?;
    let key = m
        .try_get_one::<PathBuf>("key-file")
        .ok()
        .flatten()
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_PATH));
    store.unlock(&key)?;
    Ok(store)
}

/// The parsed `--email`.
pub fn email(m: &ArgMatches) -> Result<Email> {
    let raw = m
        .try_get_one::<OsString>("email")
        .ok()
        .flatten()
        .ok_or_else(|| Error::usage("--email is required"))?;
    let raw = raw
        .to_str()
        .ok_or_else(|| Error::usage("invalid email: it is not valid UTF-8"))?;
    Email::parse(raw)
}

/// Longest secret read from stdin.
const MAX_STDIN: u64 = 1024;

/// The value of a secret-bearing option; `-` reads one line from stdin so the
/// secret never shows in `ps`.
pub fn secret_value(value: &OsStr, what: &str) -> Result<Zeroizing<String>> {
    if value != "-" {
        let s = value
            .to_str()
            .ok_or_else(|| Error::usage(format!("malformed {what}: it is not valid UTF-8")))?;
        return Ok(Zeroizing::new(s.to_string()));
    }
    let mut buf = Zeroizing::new(Vec::new());
    io::stdin()
        .lock()
        .take(MAX_STDIN + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|e| Error::usage(format!("cannot read the {what} from stdin: {e}")))?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(Error::usage(format!(
            "malformed {what}: the line on stdin is too long"
        )));
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| Error::usage(format!("malformed {what}: stdin is not valid UTF-8")))?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Zeroizing::new(line.to_string()))
}

/// Ask before a destructive change. `yes` skips the question; without a
/// terminal (a script) or with `--json` there is nobody to ask, so `--yes` is
/// required.
pub fn confirm(g: &Globals, yes: bool, question: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = io::stdin();
    if g.json || !stdin.is_terminal() {
        return Err(Error::usage(
            "refusing without confirmation: no terminal to ask on; pass --yes",
        ));
    }
    let mut err = io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .take(MAX_STDIN)
        .read_line(&mut answer)
        .map_err(|e| Error::usage(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::usage("not confirmed; nothing was changed")),
    }
}

/// Parse arguments, run the tool, print its report or its error, and return
/// the exit code of the spec's table.
pub fn run<F>(cmd: Command, args: impl IntoIterator<Item = OsString>, work: F) -> ExitCode
where
    F: FnOnce(&ArgMatches, &Globals) -> Result<Report>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    let name = cmd.get_name().to_string();
    let matches = match cmd.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return clap_failure(&name, &args, &e),
    };
    let globals = Globals {
        db: matches
            .try_get_one::<PathBuf>("db")
            .ok()
            .flatten()
            .cloned()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH)),
        json: matches.get_flag("json"),
        quiet: matches.get_flag("quiet"),
    };
    match work(&matches, &globals) {
        Ok(report) => {
            if globals.json {
                let mut doc = Map::new();
                doc.insert("ok".into(), Value::Bool(true));
                doc.extend(report.json);
                emit_json(&Value::Object(doc));
            } else {
                write_stdout(&report.human);
            }
            ExitCode::from(report.exit)
        }
        Err(e) => fail(&name, globals.json, &e),
    }
}

fn fail(name: &str, json: bool, e: &Error) -> ExitCode {
    if json {
        emit_json(&json!({
            "ok": false,
            "error": { "kind": e.kind().as_str(), "message": e.message() },
        }));
    } else {
        let _ = writeln!(io::stderr().lock(), "{name}: {}", e.message());
    }
    ExitCode::from(e.exit_code())
}

/// Help and version go to stdout with exit 0; every other clap error becomes
/// our one-line usage error (exit 2), as JSON when `--json` was asked for.
fn clap_failure(name: &str, args: &[OsString], e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        write_stdout(&e.render().to_string());
        return if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's first paragraph is the message (some span lines); join it.
    let rendered = e.render().to_string();
    let first = rendered
        .trim_start()
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let first = first.trim_start_matches("error: ");
    let first = if first.is_empty() {
        "invalid arguments"
    } else {
        first
    };
    let json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    fail(name, json, &Error::usage(format!("{first} (see --help)")))
}

fn emit_json(doc: &Value) {
    // Serialising a Value cannot fail; fall back to a fixed document anyway.
    let text = serde_json::to_string(doc).unwrap_or_else(|_| {
        r#"{"ok":false,"error":{"kind":"storage","message":"cannot encode output"}}"#.to_string()
    });
    write_stdout(&(text + "\n"));
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// A plain table for people: columns and a rule under the header, no other
/// lines, so it stays narrow and greppable.
pub fn table(header: &[&str]) -> comfy_table::Table {
    use comfy_table::{ContentLineStyle, LineStyle, TableStyle};
    let style = TableStyle::new()
        .header_lines(ContentLineStyle::none().junction(' '))
        .header_separator(LineStyle::none().fill('-').junction(' '))
        .content_lines(ContentLineStyle::none().junction(' '));
    let mut table = comfy_table::Table::new();
    table.load_style(style).set_header(header.to_vec());
    table
}

/// Append a table to a report, one trimmed line at a time.
pub fn push_table(mut report: Report, table: &mut comfy_table::Table) -> Report {
    for col in table.column_iter_mut() {
        col.set_padding((0, 1));
    }
    for line in table.lines() {
        report = report.line(line.trim_end());
    }
    report
}

/// `2026-11-28 09:30`: minutes are enough in a table, and it stays narrow.
pub fn short_time(t: Option<i64>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| {
            crate::clock::rfc3339(t)
                .replace('T', " ")
                .chars()
                .take(16)
                .collect()
        },
    )
}

/// An exemption as `mb-2fa-list` and `mb-2fa-policy` print it in JSON.
pub fn exemption_json(e: &crate::store::Exemption) -> Value {
    json!({
        "email": e.email,
        "kind": e.kind,
        "reason": e.reason,
        "created_at": json_time(Some(e.created_at)),
        "created_by": e.created_by,
        "used": e.used_at.is_some(),
        "used_at": json_time(e.used_at),
        "sealed_at": json_time(e.sealed_at),
    })
}

/// Format an optional Unix time for people.
pub fn human_time(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), crate::clock::rfc3339)
}

/// Format an optional Unix time for JSON: RFC 3339 or null.
pub fn json_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(crate::clock::rfc3339(t)))
}
