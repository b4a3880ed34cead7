//! Writes what is derived from the tools' clap definitions, so that it can be
//! committed, reviewed and packaged:
//!
//! - `man/*.8`: a man page per tool (and per `mb-2fa-policy` subcommand), the
//!   overview `mb-2fa(8)`, and the PAM module's `pam_mb2fa(8)`;
//! - `completions/{bash,zsh,fish}/`: shell completions of every tool.
//!
//! ```text
//! cargo run -p xtask -- gen     write them
//! cargo run -p xtask -- check   exit 1 if the files differ from what gen writes
//! ```
//!
//! The output depends on the source tree only: the date in the man pages is
//! the release date of the workspace version in CHANGELOG.md (none while it
//! is unreleased), never the build date.

mod completions;
mod man;
mod markup;
mod overview;
mod pam;
mod tools;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

/// One generated file; `path` is relative to the workspace root.
pub struct Output {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Directories whose every file is generated: any other file in them is stale.
const GENERATED_DIRS: &[&str] = &[
    "man",
    "completions/bash",
    "completions/zsh",
    "completions/fish",
];

const USAGE: &str = "\
usage: cargo run -p xtask -- <gen|check>

  gen    write man/*.8 and completions/ from the tools' clap definitions
  check  exit 1 if man/ or completions/ differ from what gen would write";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["gen"] => generate_files(),
        ["check"] => check(),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> Result<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask is not inside the workspace")
}

/// The date of the `## [VERSION] - YYYY-MM-DD` heading in CHANGELOG.md, or
/// `None` while the version is unreleased.
fn release_date(changelog: &str, version: &str) -> Option<String> {
    let heading = format!("## [{version}]");
    let line = changelog.lines().find(|l| l.starts_with(&heading))?;
    line[heading.len()..]
        .split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .find(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
        .map(str::to_string)
}

/// Everything `gen` writes, in memory.
fn generate(root: &Path) -> Result<Vec<Output>> {
    let changelog = root.join("CHANGELOG.md");
    let changelog = fs::read_to_string(&changelog)
        .with_context(|| format!("cannot read {}", changelog.display()))?;
    // .TH needs a non-empty date field, or man shifts the fields after it.
    let date = release_date(&changelog, tools::VERSION).unwrap_or_else(|| "unreleased".into());
    let mut out = vec![overview::page(&date)?, pam::page(&date)?];
    for tool in tools::TOOLS {
        out.extend(man::pages(tool, &date)?);
        out.extend(completions::files(tool));
    }
    Ok(out)
}

/// Files in the generated directories that `gen` would not write.
fn stale_files(root: &Path, outputs: &[Output]) -> Result<Vec<PathBuf>> {
    let wanted: BTreeSet<&Path> = outputs.iter().map(|o| o.path.as_path()).collect();
    let mut stale = Vec::new();
    for dir in GENERATED_DIRS {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {dir}"))?;
            let rel = Path::new(dir).join(entry.file_name());
            if entry.file_type()?.is_file() && !wanted.contains(rel.as_path()) {
                stale.push(rel);
            }
        }
    }
    stale.sort();
    Ok(stale)
}

fn generate_files() -> Result<bool> {
    let root = workspace_root()?;
    let outputs = generate(root)?;
    let (mut written, mut same) = (0, 0);
    for o in &outputs {
        let path = root.join(&o.path);
        if fs::read(&path).is_ok_and(|old| old == o.bytes) {
            same += 1;
            continue;
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::write(&path, &o.bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote   {}", o.path.display());
        written += 1;
    }
    let stale = stale_files(root, &outputs)?;
    for rel in &stale {
        fs::remove_file(root.join(rel))
            .with_context(|| format!("cannot remove {}", rel.display()))?;
        println!("removed {}", rel.display());
    }
    println!(
        "{written} written, {same} unchanged, {} removed ({} files in man/ and completions/)",
        stale.len(),
        outputs.len()
    );
    Ok(true)
}

/// The first line where two texts differ (1-based), for a readable report.
fn first_difference(old: &[u8], new: &[u8]) -> usize {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    let mut old_lines = old.lines();
    let mut new_lines = new.lines();
    let mut n = 1;
    loop {
        let (a, b) = (old_lines.next(), new_lines.next());
        if a != b || a.is_none() {
            return n;
        }
        n += 1;
    }
}

fn check() -> Result<bool> {
    let root = workspace_root()?;
    let outputs = generate(root)?;
    let mut problems = 0;
    for o in &outputs {
        match fs::read(root.join(&o.path)) {
            Ok(old) if old == o.bytes => {}
            Ok(old) => {
                println!(
                    "out of date: {} (from line {})",
                    o.path.display(),
                    first_difference(&old, &o.bytes)
                );
                problems += 1;
            }
            Err(_) => {
                println!("missing:     {}", o.path.display());
                problems += 1;
            }
        }
    }
    for rel in stale_files(root, &outputs)? {
        println!("stale:       {}", rel.display());
        problems += 1;
    }
    if problems > 0 {
        println!(
            "{problems} of the generated files differ; run `cargo run -p xtask -- gen` and commit man/ and completions/"
        );
        return Ok(false);
    }
    println!(
        "man/ and completions/ are up to date ({} files)",
        outputs.len()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_date_comes_from_the_changelog() {
        let log = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-01\n\n## [0.1.0] - 2026-11-28\n";
        assert_eq!(release_date(log, "0.1.0").as_deref(), Some("2026-11-28"));
        assert_eq!(release_date(log, "0.2.0").as_deref(), Some("2026-12-01"));
        assert_eq!(release_date(log, "0.3.0"), None);
        assert_eq!(release_date("## [0.1.0]\n", "0.1.0"), None);
    }

    #[test]
    fn generating_twice_gives_the_same_bytes() {
        let root = workspace_root().unwrap();
        let a = generate(root).unwrap();
        let b = generate(root).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.path, y.path);
            assert!(
                x.bytes == y.bytes,
                "{} differs between runs",
                x.path.display()
            );
        }
        let paths: BTreeSet<&Path> = a.iter().map(|o| o.path.as_path()).collect();
        assert_eq!(paths.len(), a.len(), "two outputs with one path");
    }

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(first_difference(b"a\nb\nc\n", b"a\nb\nc\n"), 4);
        assert_eq!(first_difference(b"a\nb\n", b"a\nx\n"), 2);
        assert_eq!(first_difference(b"a\n", b"a\nb\n"), 2);
    }

    /// The Debian package ships every tool, and the RPM spec installs it.
    #[test]
    fn packages_ship_every_tool() {
        let root = workspace_root().unwrap();
        let deb = fs::read_to_string(root.join("packaging/deb/Cargo.toml")).unwrap();
        let rpm = fs::read_to_string(root.join("packaging/rpm/mb-2fa.spec")).unwrap();
        for t in tools::TOOLS {
            assert!(
                deb.contains(&format!("\"target/release/{}\"", t.name)),
                "{} is not in the .deb",
                t.name
            );
            assert!(
                rpm.contains(&format!("%{{_sbindir}}/{}", t.name)),
                "{} is not in the RPM's %files",
                t.name
            );
        }
        let version = format!("Version:        {}", tools::VERSION);
        assert!(
            rpm.contains(&version),
            "the RPM spec's Version is not {}",
            tools::VERSION
        );
    }
}
