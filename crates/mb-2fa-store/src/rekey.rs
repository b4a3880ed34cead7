//! `mb-2fa-store rekey`: change the key that seals the TOTP secrets (see
//! `mb2fa_core::rekey` for the order of the steps and what a crash leaves).

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};
use mb2fa_core::Result;
use mb2fa_core::account::Ctx;
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;
use mb2fa_core::rekey::{self, KeyPaths};

use crate::TOOL;

pub fn command() -> Command {
    Command::new("rekey")
        .about("Change the key that seals the secrets (the old key is kept until --finish)")
        .long_about(
            "Change the key that seals the TOTP secrets.\n\n\
             rekey: write a new key as KEY.new (0400), re-seal every secret with it in one \
             transaction that records both keys' fingerprints, then keep the old key as KEY.old \
             (0400) and move KEY.new to KEY. Interrupted at any point, the store still opens with \
             one of the key files (every tool looks in KEY, then KEY.new and KEY.old); run rekey \
             again to complete it. Refused while an earlier rotation is not finished.\n\n\
             rekey --prepare: only write KEY.new, so it can be copied to every node of a cluster \
             before any secret is sealed with it (nodes then keep working during the rotation).\n\n\
             rekey --finish: check that every secret opens with KEY and the store records it, then \
             forget the old key's fingerprint and remove KEY.old. Refused (nothing changed) if \
             anything still needs the old key. On a cluster, run it on every node once \
             mb-2fa-store check passes on each.",
        )
        .arg(
            Arg::new("finish")
                .long("finish")
                .action(ArgAction::SetTrue)
                .conflicts_with("prepare")
                .help("Retire the old key: check every secret opens with the new one, then remove KEY.old"),
        )
        .arg(
            Arg::new("prepare")
                .long("prepare")
                .action(ArgAction::SetTrue)
                .help("Only write the next key as KEY.new (to copy it to every node first)"),
        )
}

pub fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let paths = KeyPaths::of(&g.key_file);
    let mut store = cli::open_unlocked_quietly(g)?;
    let ctx = Ctx::new(&SystemClock, TOOL);
    let report = Report::new()
        .field("db", g.db.to_string())
        .field("key_file", paths.key.display().to_string());
    if m.get_flag("prepare") {
        let p = rekey::prepare(&mut store, &g.key_file)?;
        let report = report
            .field("step", "prepared")
            .field("new_key_file", paths.new.display().to_string())
            .field("new_fingerprint", p.new_fingerprint.clone())
            .field("created", p.created)
            .field("removed_temporary_files", paths_of(&p.removed_temporaries));
        if g.quiet {
            return Ok(report);
        }
        return Ok(with_removed(report, &p.removed_temporaries)
            .line(format!(
                "{} the next key {} ({}); the store still uses {}.",
                if p.created { "Wrote" } else { "Kept" },
                paths.new.display(),
                p.new_fingerprint,
                paths.key.display()
            ))
            .line(format!(
                "Copy it to every node as {} (mode 0400), then run mb-2fa-store rekey on one node.",
                paths.new.display()
            )));
    }
    if m.get_flag("finish") {
        let f = rekey::finish(&mut store, &g.key_file, &ctx)?;
        let report = report
            .field("step", "finished")
            .field("key_fingerprint", f.fingerprint.clone())
            .field("retired_fingerprint", f.retired.clone())
            .field("removed_old_key_file", f.removed_old_file)
            .field("secrets_checked", f.checked)
            .field("removed_temporary_files", paths_of(&f.removed_temporaries));
        if g.quiet {
            return Ok(report);
        }
        let first = match &f.retired {
            Some(old) => format!(
                "All {} secret(s) open with key {}; the previous key {old} is retired.",
                f.checked, f.fingerprint
            ),
            None if f.removed_old_file => format!(
                "All {} secret(s) open with key {}; the store no longer recorded the previous key.",
                f.checked, f.fingerprint
            ),
            None => format!(
                "No key rotation to finish: all {} secret(s) open with key {}.",
                f.checked, f.fingerprint
            ),
        };
        let report = report.line(first).line(if f.removed_old_file {
            format!("Removed {}.", paths.old.display())
        } else {
            format!("No {} on this node.", paths.old.display())
        });
        return Ok(with_removed(report, &f.removed_temporaries));
    }
    let r = rekey::rekey(&mut store, &g.key_file, &ctx)?;
    let report = report
        .field("step", "rekeyed")
        .field("old_fingerprint", r.old_fingerprint.clone())
        .field("new_fingerprint", r.new_fingerprint.clone())
        .field("resealed", r.resealed)
        .field("resumed", r.resumed)
        .field("old_key_file", paths.old.display().to_string())
        .field("removed_temporary_files", paths_of(&r.removed_temporaries));
    if g.quiet {
        return Ok(report);
    }
    let first = match r.resealed {
        Some(n) => format!(
            "Re-sealed {n} secret(s) with the new key {} (was {}){}.",
            r.new_fingerprint,
            r.old_fingerprint,
            if r.resumed {
                ", completing an interrupted rekey"
            } else {
                ""
            }
        ),
        None => format!(
            "Completed an interrupted rekey: the secrets were already sealed with {}.",
            r.new_fingerprint
        ),
    };
    let report = report
        .line(first)
        .line(format!(
            "{} holds the new key; {} keeps the old one until mb-2fa-store rekey --finish.",
            paths.key.display(),
            paths.old.display()
        ))
        .line("Back up the new key file. On a cluster, copy both to every node and run mb-2fa-store check there; then run mb-2fa-store rekey --finish on each node.");
    Ok(with_removed(report, &r.removed_temporaries))
}

fn paths_of(removed: &[PathBuf]) -> Vec<String> {
    removed.iter().map(|p| p.display().to_string()).collect()
}

/// One line naming the leftover temporary key files a run removed.
fn with_removed(report: Report, removed: &[PathBuf]) -> Report {
    if removed.is_empty() {
        return report;
    }
    report.line(format!(
        "Removed {} leftover temporary key file(s) of an interrupted run: {}.",
        removed.len(),
        paths_of(removed).join(", ")
    ))
}
