//! Running a tool: parse, refuse an untrusted environment, do the work,
//! print the report or the one-line error, return the exit code.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{ArgMatches, Command};
use serde_json::{Map, Value, json};

use super::stream::{Stream, emit_json, write_stdout};
use super::{Globals, Report};
use crate::error::{Error, Result};

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
    let json = matches.get_flag("json");
    let (db, key_file) = match super::args::store_and_key(&matches) {
        Ok(found) => found,
        Err(e) => return fail(&name, json, &e),
    };
    let globals = Globals {
        db,
        key_file,
        json,
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

pub(super) fn fail(name: &str, json: bool, e: &Error) -> ExitCode {
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
pub(super) fn safe(message: &str) -> std::borrow::Cow<'_, str> {
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
/// `file` is `mb-2fa-store backup FILE`, `input` `mb-2fa-import`'s FILE.
const PATH_OPTIONS: [&str; 7] = ["qr-file", "key-file", "config", "db", "to", "file", "input"];

/// Run through sudo by a non-root user (`SUDO_UID` set and not 0: the
/// appliance's web front end with a pinned sudoers rule), a tool takes no
/// file from its caller: `--db`, `--key-file`, `--config`, `--qr-file`,
/// `mb-2fa-import`'s input file and
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
                let name = if id == "file" || id == "input" {
                    "FILE".to_string()
                } else {
                    format!("--{id}")
                };
                return Err(Error::usage(format!(
                    "{name} is not accepted when the tool runs {who}: a sudo rule must not let its caller choose the files root opens; run it as root (sudo -i) to use {name}"
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
