//! The man page of each tool, section 8: clap_mangen renders NAME, SYNOPSIS,
//! DESCRIPTION, OPTIONS and SUBCOMMANDS from the tool's `command()`; we add
//! JSON OUTPUT, EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO.
//! A tool with subcommands (`mb-2fa-policy`) also gets one page per
//! subcommand (`mb-2fa-policy-check(8)`), as its SUBCOMMANDS section says.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, Command};
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};
use mb2fa_core::config::DEFAULT_CONFIG_PATH;
use mb2fa_core::key_file::DEFAULT_KEY_PATH;
use mb2fa_core::store::DEFAULT_DB_PATH;

use crate::Output;
use crate::markup::{example, inlines, item, para, references, section};
use crate::tools::{Example, Tool, VERSION};

pub const SECTION: &str = "8";
pub const MANUAL: &str = "System Administration";

pub fn source() -> String {
    format!("mb-2fa {VERSION}")
}

/// The `.TH` line and everything clap knows, without clap_mangen's EXTRA
/// (our EXAMPLES replace the `after_help` text) and VERSION (the footer
/// already shows it) sections.
fn standard_sections(cmd: Command, date: &str) -> Result<String> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let has_subcommands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let mut synopsis = Roff::new();
    section(&mut synopsis, "SYNOPSIS");
    if has_subcommands {
        for (i, sub) in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .enumerate()
        {
            if i > 0 {
                synopsis.control("br", []);
            }
            synopsis.text(synopsis_line(sub, false));
        }
    } else {
        synopsis.text(synopsis_line(&cmd, false));
    }
    let man = Man::new(cmd)
        .title(name.to_uppercase())
        .section(SECTION)
        .date(date)
        .source(source())
        .manual(MANUAL);
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    layout().to_writer(&mut buf)?;
    man.render_name_section(&mut buf)?;
    synopsis.to_writer(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    if has_subcommands {
        man.render_subcommands_section(&mut buf)?;
    }
    let text = String::from_utf8(buf).context("clap_mangen wrote invalid UTF-8")?;
    // Each render_* call starts with the same preamble (a string definition
    // for apostrophes); keep the first only.
    let preamble = Roff::new().render();
    Ok(format!("{preamble}{}", text.replace(&preamble, "")))
}

/// After `.TH`: no hyphenation and a ragged right margin, as in git's pages,
/// so that option and JSON field names are never split or spread out.
pub fn layout() -> Roff {
    let mut r = Roff::new();
    r.control("nh", []).control("ad", ["l"]);
    r
}

/// Options every tool takes (or several do): last in the synopsis, in this
/// order, so that what is particular to a tool comes first.
const COMMON: &[&str] = &["key-file", "db", "json", "quiet"];

/// One synopsis line, more telling than clap_mangen's: required options
/// first, every option with its value names, `...` when it may repeat, and
/// no `--help`/`--version` (they are under OPTIONS). `brief`: the required
/// options only, then `[options]`.
pub fn synopsis_line(cmd: &Command, brief: bool) -> Vec<Inline> {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let shown: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| {
            !a.is_hide_set()
                && !matches!(
                    a.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
        })
        .collect();
    let common = |a: &Arg| COMMON.iter().position(|c| a.get_id() == *c);
    let mut ordered: Vec<&Arg> = shown
        .iter()
        .filter(|a| a.is_required_set())
        .copied()
        .collect();
    ordered.extend(
        shown
            .iter()
            .filter(|a| !a.is_required_set() && common(a).is_none()),
    );
    let mut commons: Vec<&Arg> = shown
        .iter()
        .filter(|a| !a.is_required_set() && common(a).is_some())
        .copied()
        .collect();
    commons.sort_by_key(|a| common(a));
    ordered.extend(commons);

    if brief {
        ordered.retain(|a| a.is_required_set());
    }
    let mut line = vec![bold(name)];
    for a in ordered {
        line.push(roman(if a.is_required_set() { " " } else { " [" }));
        let values: Vec<String> = match a.get_value_names() {
            Some(names) => names.iter().map(ToString::to_string).collect(),
            None => vec![a.get_id().as_str().to_uppercase()],
        };
        let flag = match (a.get_long(), a.get_short()) {
            (Some(long), _) => Some(format!("--{long}")),
            (None, Some(short)) => Some(format!("-{short}")),
            (None, None) => None,
        };
        if let Some(flag) = flag {
            line.push(bold(flag));
            if a.get_action().takes_values() {
                line.push(roman(" "));
                line.push(italic(values.join(" ")));
            }
        } else {
            line.push(italic(values.join(" ")));
        }
        if !a.is_required_set() {
            line.push(roman("]"));
        }
        if matches!(a.get_action(), ArgAction::Append) {
            line.push(roman("..."));
        }
    }
    if brief {
        line.push(roman(" ["));
        line.push(italic("options"));
        line.push(roman("]"));
    }
    line
}

fn finish(standard: String, extra: &Roff) -> Vec<u8> {
    let preamble = Roff::new().render();
    let extra = extra.render();
    let mut page = standard;
    page.push_str(extra.strip_prefix(&preamble).unwrap_or(&extra));
    page.into_bytes()
}

fn json_section(roff: &mut Roff, tool: &Tool) {
    section(roff, "JSON OUTPUT");
    roff.text(inlines(
        "With `--json`, standard output carries exactly one JSON document, on success and on \
         failure alike, with no colour, no QR art and no prompts. On success it has \
         `\"ok\": true` and the fields below; on failure `\"ok\": false` and `\"error\"` with \
         `\"kind\"` (`rejected`, `usage`, `not_enrolled`, `locked`, `conflict` or `storage`, \
         matching the exit status) and `\"message\"`.",
    ));
    for p in tool.json {
        para(roff, p);
    }
}

fn exit_section(roff: &mut Roff, codes: &[(u8, &str)]) {
    section(roff, "EXIT STATUS");
    let mut i = 0;
    while let Some(&(code, _)) = codes.get(i) {
        let texts: Vec<&str> = codes[i..]
            .iter()
            .take_while(|c| c.0 == code)
            .map(|c| c.1)
            .collect();
        i += texts.len();
        // "Success. For `check`: ..." reads better than "Success. `check`: ...".
        let joined: Vec<String> = texts
            .iter()
            .enumerate()
            .map(|(n, t)| match n > 0 && t.starts_with('`') {
                true => format!("For {t}"),
                false => (*t).to_string(),
            })
            .collect();
        item(roff, &format!("`{code}`"), &joined.join(" "));
    }
}

/// The options of `cmd` that an environment variable can set.
fn env_args(cmd: &Command) -> Vec<&Arg> {
    cmd.get_arguments()
        .filter(|a| a.get_env().is_some())
        .collect()
}

fn takes(cmd: &Command, id: &str) -> bool {
    cmd.get_arguments().any(|a| a.get_id() == id)
}

fn environment_section(roff: &mut Roff, tool: &Tool, cmd: &Command) {
    section(roff, "ENVIRONMENT");
    for arg in env_args(cmd) {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        item(
            roff,
            &format!("`{}`", env.to_string_lossy()),
            &format!(
                "Used when `--{long}` is not given. `sudo`(8) usually resets the environment, \
                 so under sudo give `--{long}`."
            ),
        );
    }
    if tool.audited {
        item(
            roff,
            "`SUDO_USER`",
            "Recorded as the actor of the audit record (the admin behind `sudo`); when unset, \
             the name of the invoking user.",
        );
        item(
            roff,
            "`MB2FA_SYSLOG_SOCKET`",
            "Send the audit records to this datagram socket instead of */dev/log*; when set \
             but empty, send none to syslog.",
        );
    }
    for (name, text) in tool.extra_env {
        let names: Vec<String> = name.split(", ").map(|n| format!("`{n}`")).collect();
        item(roff, &names.join(", "), text);
    }
}

fn files_section(roff: &mut Roff, tool: &Tool, cmd: &Command) {
    section(roff, "FILES");
    // The defaults are not clap defaults (the store and the key can also come from
    // MB2FA_DB, MB2FA_KEY_FILE or the config file), so they are named from the core.
    if takes(cmd, "config") {
        item(
            roff,
            &format!("*{DEFAULT_CONFIG_PATH}*"),
            "The configuration file, read when it exists and `--config` is not given: \
             `[store] url` (or `path`) and `[key] file`. It must be owned by root and not \
             writable by others, like the key's directory. `--db` and `MB2FA_DB` override it.",
        );
    }
    if takes(cmd, "db") {
        item(
            roff,
            &format!("*{DEFAULT_DB_PATH}*"),
            "The SQLite database that all mb-2fa tools share (mode 0600, in a directory of mode \
             0700), unless `--db`, `MB2FA_DB` or the configuration file names another store. \
             While it is in use SQLite keeps *-wal* and *-shm* files beside it. It holds the \
             sealed TOTP secrets, the backup codes as argon2id hashes, the policy and the audit \
             trail.",
        );
    }
    if takes(cmd, "key-file") {
        item(
            roff,
            &format!("*{DEFAULT_KEY_PATH}*"),
            "The key that seals the TOTP secrets in the database (32 bytes, mode 0400, in a \
             directory of mode 0700), unless `--key-file`, `MB2FA_KEY_FILE` or the configuration \
             file names another; created atomically \
             with the first enrollment. Back it up apart from the database: together they hold \
             every user's second factor, and without it no code can be verified.",
        );
    }
    if tool.audited {
        item(
            roff,
            "*/dev/log*",
            "Where the audit records also go, when it exists: syslog facility auth, \
             identifier mb-2fa. A missing syslog never fails a command.",
        );
    }
}

fn examples_section<'a>(roff: &mut Roff, examples: impl IntoIterator<Item = &'a Example>) {
    let mut examples = examples.into_iter().peekable();
    if examples.peek().is_none() {
        return;
    }
    section(roff, "EXAMPLES");
    for (i, e) in examples.enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text(inlines(e.what));
        example(roff, e.run);
    }
}

fn see_also_section<'a>(roff: &mut Roff, pages: impl IntoIterator<Item = &'a str>) {
    section(roff, "SEE ALSO");
    roff.text(references(pages));
}

/// Whether an example runs subcommand `sub` of `tool`.
fn runs_subcommand(e: &Example, tool: &str, sub: &str) -> bool {
    e.run.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.any(|w| w == tool) && words.find(|w| !w.starts_with('-')) == Some(sub)
    })
}

/// Exit codes that concern `sub`: those whose text does not start with a list
/// of other subcommands (`` `unexempt`, `seal`: ... ``).
fn exit_codes_for<'a>(tool: &'a Tool, sub: &str) -> Vec<(u8, &'a str)> {
    tool.exit
        .iter()
        .filter(|(_, text)| {
            let Some((head, _)) = text.split_once(": ") else {
                return true;
            };
            let subs: Vec<&str> = head.split(", ").collect();
            let is_list = subs
                .iter()
                .all(|s| s.len() > 2 && s.starts_with('`') && s.ends_with('`'));
            !is_list || subs.iter().any(|s| s.trim_matches('`') == sub)
        })
        .map(|&(code, text)| (code, text))
        .collect()
}

pub fn pages(tool: &Tool, date: &str) -> Result<Vec<Output>> {
    let mut cmd = (tool.command)().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();

    let mut extra = Roff::new();
    json_section(&mut extra, tool);
    exit_section(&mut extra, tool.exit);
    environment_section(&mut extra, tool, &cmd);
    files_section(&mut extra, tool, &cmd);
    examples_section(&mut extra, tool.examples);
    let mut see_also = vec!["mb-2fa"];
    see_also.extend(tool.see_also.iter().copied());
    see_also_section(&mut extra, see_also);
    out.push(Output {
        path: PathBuf::from(format!("man/{}.{SECTION}", tool.name)),
        bytes: finish(standard_sections(cmd.clone(), date)?, &extra),
    });

    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = sub
            .get_display_name()
            .unwrap_or_else(|| sub.get_name())
            .to_string();
        let mut extra = Roff::new();
        section(&mut extra, "JSON OUTPUT");
        extra.text(inlines(
            "With `--json`: one JSON document on standard output, success or failure; see ",
        ));
        extra.text(references([tool.name]));
        extra.text([roman("for its fields.")]);
        exit_section(&mut extra, &exit_codes_for(tool, sub.get_name()));
        environment_section(&mut extra, tool, &cmd);
        files_section(&mut extra, tool, &cmd);
        examples_section(
            &mut extra,
            tool.examples
                .iter()
                .filter(|e| runs_subcommand(e, tool.name, sub.get_name())),
        );
        see_also_section(&mut extra, [tool.name, "mb-2fa"]);
        out.push(Output {
            path: PathBuf::from(format!("man/{page}.{SECTION}")),
            bytes: finish(standard_sections(sub.clone(), date)?, &extra),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::TOOLS;

    fn policy() -> &'static Tool {
        TOOLS.iter().find(|t| t.name == "mb-2fa-policy").unwrap()
    }

    #[test]
    fn subcommand_pages_get_their_own_exit_codes_and_examples() {
        let p = policy();
        let codes = |sub| {
            exit_codes_for(p, sub)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(codes("check"), vec![0, 0, 2, 6, 7, 10, 10]);
        assert_eq!(codes("seal"), vec![0, 2, 3, 5, 10]);
        assert_eq!(codes("unexempt"), vec![0, 2, 3, 10]);
        assert_eq!(codes("show"), vec![0, 2, 10]);
        let n = |sub| {
            p.examples
                .iter()
                .filter(|e| runs_subcommand(e, p.name, sub))
                .count()
        };
        assert_eq!((n("exempt"), n("check"), n("set")), (2, 1, 1));
    }

    #[test]
    fn pages_have_every_section_and_one_preamble() {
        for t in TOOLS {
            for page in pages(t, "").unwrap() {
                let text = String::from_utf8(page.bytes).unwrap();
                let path = page.path.display();
                for s in [
                    "NAME",
                    "SYNOPSIS",
                    "DESCRIPTION",
                    "OPTIONS",
                    "ENVIRONMENT",
                    "FILES",
                ] {
                    assert!(text.contains(&format!(".SH {s}\n")), "{path}: no {s}");
                }
                for s in ["\"EXIT STATUS\"", "\"SEE ALSO\"", "\"JSON OUTPUT\""] {
                    assert!(text.contains(&format!(".SH {s}\n")), "{path}: no {s}");
                }
                assert_eq!(text.matches(".ie \\n(.g").count(), 1, "{path}");
                assert!(text.starts_with(".ie"), "{path}");
                assert!(!text.contains(".SH EXTRA"), "{path}");
            }
        }
    }
}
