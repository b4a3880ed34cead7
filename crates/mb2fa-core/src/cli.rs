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
/// and text for people. A tool that streams (see [`run_streaming`]) puts here
/// what follows the streamed part: the fields after its streamed arrays, or
/// the text after its streamed lines.
#[derive(Debug, Default)]
pub struct Report {
    pub json: Map<String, Value>,
    pub human: String,
    /// Exit code of a successful run (non-zero only for answers that are
    /// exit codes by design, like a login decision).
    pub exit: u8,
    /// For output shown once and never again (a new secret, new backup
    /// codes): what state the change left and how to recover, said on
    /// stderr with exit 10 if the output cannot be written (a full disk, a
    /// closed pipe). Without it a closed pipe ends the run quietly and any
    /// other write error is exit 10.
    pub undelivered: Option<String>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.json.insert(key.to_string(), value.into());
        self
    }

    /// One line of text. Control, bidi and invisible characters in it (a
    /// stored value a database writer planted) are shown as escapes.
    pub fn line(mut self, text: impl AsRef<str>) -> Report {
        self.human
            .push_str(&crate::text::escape_for_terminal(text.as_ref()));
        self.human.push('\n');
        self
    }

    /// See [`Report::undelivered`].
    pub fn if_undelivered(mut self, recovery: impl Into<String>) -> Report {
        self.undelivered = Some(recovery.into());
        self
    }

    pub fn exit(mut self, code: u8) -> Report {
        self.exit = code;
        self
    }

    /// Lines of text (a table): escaped as [`Report::line`], newlines kept.
    pub fn text(mut self, text: impl AsRef<str>) -> Report {
        self.human
            .push_str(&crate::text::escape_block(text.as_ref()));
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

/// The key file named by `--key-file` / `MB2FA_KEY_FILE`, else the default.
pub fn key_path(m: &ArgMatches) -> PathBuf {
    m.try_get_one::<PathBuf>("key-file")
        .ok()
        .flatten()
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_PATH))
}

/// Open the database and load the key: what every tool that reads or
/// writes a secret does first.
pub fn open_unlocked(m: &ArgMatches, g: &Globals) -> Result<Store> {
    let mut store = Store::open(&g.db, OpenMode::MustExist)?;
    store.unlock(&key_path(m))?;
    Ok(store)
}

/// [`open_unlocked`] for `mb-2fa-enable`: on a fresh appliance (neither
/// database nor key file) the first enrollment creates both.
pub fn open_for_enrollment(m: &ArgMatches, g: &Globals) -> Result<Store> {
    let key = key_path(m);
    let mut store = Store::open(&g.db, OpenMode::CreateIfFresh { key_file: &key })?;
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
    run_streaming(cmd, args, |m, g, _| work(m, g))
}

/// [`run`] for a tool whose output can be large (one item per account): it
/// writes the items to the [`Stream`] as it reads them, so its memory does
/// not grow with their number, and returns the rest in its [`Report`].
///
/// An error before anything reached stdout is printed as usual (the
/// buffered part is dropped, so `--json` still prints exactly one document,
/// `"ok": false`). Once part of the output has left it cannot be taken
/// back: the error goes to stderr as one line, with its exit code, and with
/// `--json` the document on stdout stays incomplete (invalid JSON, never a
/// second document after it). A closed pipe (`| head`) ends the run quietly.
pub fn run_streaming<F>(cmd: Command, args: impl IntoIterator<Item = OsString>, work: F) -> ExitCode
where
    F: FnOnce(&ArgMatches, &Globals, &mut Stream) -> Result<Report>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    let name = cmd.get_name().to_string();
    // Before anything is parsed, read or opened.
    if let Err(e) = crate::process::no_core_dumps() {
        let json = args.iter().any(|a| a == "--json");
        return fail(&name, json, &e);
    }
    let matches = match cmd.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return clap_failure(&name, &args, &e),
    };
    if let Err(e) = check_delegation(&matches) {
        let json = args.iter().any(|a| a == "--json");
        return fail(&name, json, &e);
    }
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
    let mut stream = Stream::new();
    let outcome = work(&matches, &globals, &mut stream);
    let outcome = match outcome {
        Ok(report) if stream.is_used() => stream.finish(report),
        other => other,
    };
    match outcome {
        Ok(report) => {
            let exit = report.exit;
            let undelivered = report.undelivered.clone();
            let written = if stream.is_used() {
                Ok(())
            } else if globals.json {
                let mut doc = Map::new();
                doc.insert("ok".into(), Value::Bool(true));
                doc.extend(report.json);
                emit_json(&Value::Object(doc))
            } else {
                write_stdout(&report.human)
            };
            match (written, undelivered) {
                (Ok(()), _) => ExitCode::from(exit),
                (Err(e), Some(recovery)) => {
                    let _ = writeln!(
                        io::stderr().lock(),
                        "{name}: cannot write the output to stdout ({e}): {}",
                        safe(&recovery)
                    );
                    ExitCode::from(10)
                }
                (Err(e), None) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(exit),
                (Err(e), None) => {
                    let _ = writeln!(io::stderr().lock(), "{name}: cannot write to stdout: {e}");
                    ExitCode::from(10)
                }
            }
        }
        Err(e) => stream.fail(&name, globals.json, &e),
    }
}

fn fail(name: &str, json: bool, e: &Error) -> ExitCode {
    if json {
        // Nothing better to do if even this cannot be written.
        let _ = emit_json(&json!({
            "ok": false,
            "error": { "kind": e.kind().as_str(), "message": e.message() },
        }));
    } else {
        let _ = writeln!(io::stderr().lock(), "{name}: {}", safe(e.message()));
    }
    ExitCode::from(e.exit_code())
}

/// An error message as it may reach a terminal.
fn safe(message: &str) -> std::borrow::Cow<'_, str> {
    crate::text::escape_for_terminal(message)
}

/// Help and version go to stdout with exit 0; every other clap error becomes
/// our one-line usage error (exit 2), as JSON when `--json` was asked for.
fn clap_failure(name: &str, args: &[OsString], e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = write_stdout(&e.render().to_string());
        return if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let first = usage_message(e);
    let json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    fail(name, json, &Error::usage(format!("{first} (see --help)")))
}

/// The options that name a file the tool (root) opens or writes.
const PATH_OPTIONS: [&str; 4] = ["qr-file", "key-file", "config", "db"];

/// Run through sudo by a non-root user (`SUDO_UID` set and not 0: the
/// appliance's web front end with a pinned sudoers rule), a tool takes no
/// file from its caller: `--db`, `--key-file`, `--config`, `--qr-file` and
/// every `MB2FA_*` variable are refused (exit 2), so such a rule cannot be
/// turned into "read or write any file as root". An admin who needs them
/// runs the tool from a root shell.
fn check_delegation(m: &ArgMatches) -> Result<()> {
    let Some(sudo_uid) = std::env::var_os("SUDO_UID") else {
        return Ok(());
    };
    if sudo_uid.to_str() == Some("0") {
        return Ok(());
    }
    let who = format!(
        "through sudo for a non-root user (SUDO_UID={})",
        crate::text::escape_for_terminal(&sudo_uid.to_string_lossy())
    );
    if let Some((var, _)) =
        std::env::vars_os().find(|(k, _)| k.to_string_lossy().starts_with("MB2FA_"))
    {
        return Err(Error::usage(format!(
            "{} is not accepted when the tool runs {who}: the store and key are the appliance's defaults; run it as root (sudo -i) to point elsewhere",
            crate::text::escape_for_terminal(&var.to_string_lossy())
        )));
    }
    let mut level = Some(m);
    while let Some(matches) = level {
        for id in PATH_OPTIONS {
            let given = matches!(
                matches
                    .try_contains_id(id)
                    .ok()
                    .and_then(|_| matches.value_source(id)),
                Some(
                    clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                )
            );
            if given {
                return Err(Error::usage(format!(
                    "--{id} is not accepted when the tool runs {who}: a sudo rule must not let its caller choose the files root opens; run it as root (sudo -i) to use --{id}"
                )));
            }
        }
        level = matches.subcommand().map(|(_, sub)| sub);
    }
    Ok(())
}

/// clap's error, told in our words from its parts. What the user typed is
/// never quoted (it may be a code or a backup code, `--code 492039 582913`,
/// or carry terminal escapes), except a plain option name such as
/// `--emial`; what we defined (option names, valid values) is.
fn usage_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind as C, ContextValue as V, ErrorKind as K};
    let ours = |kind: C| -> Option<String> {
        match e.get(kind)? {
            V::String(s) => Some(s.clone()),
            V::Strings(v) => Some(v.join(", ")),
            V::StyledStr(s) => Some(s.to_string()),
            V::StyledStrs(v) => Some(
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            V::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let typed =
        |kind: C| -> Option<String> { ours(kind).filter(|s| crate::text::is_plain_option(s)) };
    let suggestion = || {
        typed(C::SuggestedArg)
            .or_else(|| typed(C::SuggestedSubcommand))
            .map_or_else(String::new, |s| format!("; did you mean {s}?"))
    };
    let arg = ours(C::InvalidArg).unwrap_or_else(|| "an option".to_string());
    match e.kind() {
        K::UnknownArgument => match typed(C::InvalidArg) {
            Some(flag) => format!("unexpected argument {flag}{}", suggestion()),
            None => "unexpected argument (not shown: it may be a code); pass each option once, one value each".to_string(),
        },
        K::InvalidSubcommand => match typed(C::InvalidSubcommand) {
            Some(sub) => format!("unknown subcommand {sub}{}", suggestion()),
            None => "unknown subcommand (not shown)".to_string(),
        },
        K::InvalidValue if ours(C::InvalidValue).unwrap_or_default().is_empty() => {
            format!("{arg} needs a value")
        }
        K::InvalidValue => {
            // A word where one of ours was expected is named (`--qr sixel`);
            // anything else typed (digits, escapes) is not.
            let shown = typed(C::InvalidValue).map_or_else(String::new, |v| format!(" {v}"));
            match ours(C::ValidValue).filter(|v| !v.is_empty()) {
                Some(valid) => {
                    format!("invalid value{shown} for {arg} (possible values: {valid})")
                }
                None => format!("invalid value{shown} for {arg}"),
            }
        }
        K::ValueValidation => {
            // The validator's reason, unless it repeats what was typed.
            let value = ours(C::InvalidValue).unwrap_or_default();
            let why = std::error::Error::source(e)
                .map(ToString::to_string)
                .map(|w| match w.strip_prefix(value.as_str()) {
                    Some(rest) if !value.is_empty() => format!("the value{rest}"),
                    _ => w,
                })
                .filter(|w| value.is_empty() || !w.contains(&value))
                .filter(|w| !w.chars().any(crate::text::is_unsafe_for_terminal));
            match why {
                Some(w) => format!("invalid value for {arg}: {w}"),
                None => format!("invalid value for {arg}"),
            }
        }
        K::MissingRequiredArgument => format!("missing {arg}"),
        K::MissingSubcommand => match ours(C::ValidSubcommand) {
            Some(subs) => format!("a subcommand is required: {subs}"),
            None => "a subcommand is required".to_string(),
        },
        K::ArgumentConflict => match ours(C::PriorArg) {
            Some(prior) => format!("{arg} cannot be used with {prior}"),
            None => format!("{arg} cannot be used with an option given before it"),
        },
        K::TooManyValues | K::WrongNumberOfValues | K::TooFewValues => {
            format!("wrong number of values for {arg} (not shown)")
        }
        K::NoEquals => format!("{arg} needs its value after ="),
        K::InvalidUtf8 => "an argument is not valid UTF-8".to_string(),
        _ => "invalid arguments".to_string(),
    }
}

fn emit_json(doc: &Value) -> io::Result<()> {
    // Serialising a Value cannot fail; fall back to a fixed document anyway.
    let text = crate::text::to_safe_json(doc).unwrap_or_else(|_| {
        r#"{"ok":false,"error":{"kind":"storage","message":"cannot encode output"}}"#.to_string()
    });
    write_stdout(&(text + "\n"))
}

/// Write to stdout; the caller decides what a failure means.
fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}

/// Bytes a [`Stream`] gathers before it writes them to stdout.
const STREAM_CHUNK: usize = 64 * 1024;

/// Stdout for a tool run by [`run_streaming`]: items go out as they are
/// produced, in chunks of [`STREAM_CHUNK`] bytes, so memory stays flat
/// however many there are.
///
/// With `--json`, [`Stream::json_array`] writes an array field (opening the
/// document, `{"ok":true`, first); `run_streaming` then appends the fields
/// of the tool's [`Report`] and closes the document, so the output is the
/// one document [`run`] would have printed, key for key. Without `--json`,
/// [`Stream::line`] writes one line of text.
///
/// After a failed write (a closed pipe, a full disk) nothing more is
/// written and every later call fails at once, so a loop over items stops.
#[derive(Debug, Default)]
pub struct Stream {
    /// Written by the tool, not yet to stdout.
    buf: Vec<u8>,
    /// The tool wrote something: `run_streaming` finishes through the stream.
    used: bool,
    /// `{"ok":true` has been written; the document is still open.
    json_open: bool,
    /// Some bytes have been handed to stdout: they cannot be taken back.
    reached: bool,
    /// The first failed write to stdout.
    failed: Option<io::ErrorKind>,
}

/// The items of one JSON array being streamed (see [`Stream::json_array`]).
#[derive(Debug)]
pub struct JsonArray<'a> {
    stream: &'a mut Stream,
    empty: bool,
}

impl JsonArray<'_> {
    /// Append one item to the array.
    pub fn push(&mut self, item: &impl serde::Serialize) -> Result<()> {
        if !self.empty {
            self.stream.write(b",")?;
        }
        self.stream.write_json(item)?;
        self.empty = false;
        Ok(())
    }
}

impl Stream {
    fn new() -> Stream {
        Stream::default()
    }

    fn is_used(&self) -> bool {
        self.used
    }

    /// Write the field `"key": [...]` of the `--json` document, its items
    /// pushed by `fill` as they come; returns what `fill` returns.
    pub fn json_array<T>(
        &mut self,
        key: &str,
        fill: impl FnOnce(&mut JsonArray<'_>) -> Result<T>,
    ) -> Result<T> {
        self.json_key(key)?;
        self.write(b"[")?;
        let value = fill(&mut JsonArray {
            stream: self,
            empty: true,
        })?;
        self.write(b"]")?;
        Ok(value)
    }

    /// Write one line of text (a newline is added).
    pub fn line(&mut self, text: impl AsRef<str>) -> Result<()> {
        self.write(crate::text::escape_for_terminal(text.as_ref()).as_bytes())?;
        self.write(b"\n")
    }

    /// `{"ok":true` the first time, then `,"key":`.
    fn json_key(&mut self, key: &str) -> Result<()> {
        if !self.json_open {
            self.write(br#"{"ok":true"#)?;
            self.json_open = true;
        }
        self.write(b",")?;
        self.write_json(key)?;
        self.write(b":")
    }

    fn write_json(&mut self, value: &(impl serde::Serialize + ?Sized)) -> Result<()> {
        self.check()?;
        self.used = true;
        let mark = self.buf.len();
        if crate::text::write_safe_json(&mut self.buf, value).is_err() {
            // Never half an item in the output.
            self.buf.truncate(mark);
            return Err(Error::storage("cannot encode output"));
        }
        self.spill()
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.check()?;
        self.used = true;
        self.buf.extend_from_slice(bytes);
        self.spill()
    }

    fn check(&self) -> Result<()> {
        match self.failed {
            Some(kind) => Err(write_error(&io::Error::from(kind))),
            None => Ok(()),
        }
    }

    /// Write the buffer out once it holds a chunk.
    fn spill(&mut self) -> Result<()> {
        if self.buf.len() >= STREAM_CHUNK {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.reached = true;
        let mut out = io::stdout().lock();
        match out.write_all(&self.buf).and_then(|()| out.flush()) {
            Ok(()) => {
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.kind());
                self.buf = Vec::new();
                Err(write_error(&e))
            }
        }
    }

    /// Write what the report adds after the streamed part, close the JSON
    /// document, and flush.
    fn finish(&mut self, report: Report) -> Result<Report> {
        if self.json_open {
            for (key, value) in &report.json {
                self.json_key(key)?;
                self.write_json(value)?;
            }
            self.write(b"}\n")?;
            self.json_open = false;
        } else {
            self.write(report.human.as_bytes())?;
        }
        self.flush()?;
        Ok(report)
    }

    /// Report `e`, the error that ended the run, as far as the output allows.
    fn fail(&mut self, name: &str, json: bool, e: &Error) -> ExitCode {
        if let Some(kind) = self.failed {
            // Nobody reads stdout any more (`| head`): not an error to shout
            // about. Any other failed write is one line on stderr.
            if kind == io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr().lock(), "{name}: {}", safe(e.message()));
            return ExitCode::from(e.exit_code());
        }
        // Not yet written out: dropped, so the error is the only output.
        self.buf = Vec::new();
        if self.reached {
            let _ = writeln!(io::stderr().lock(), "{name}: {}", safe(e.message()));
            ExitCode::from(e.exit_code())
        } else {
            fail(name, json, e)
        }
    }
}

fn write_error(e: &io::Error) -> Error {
    Error::storage(format!("cannot write to stdout: {e}"))
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
