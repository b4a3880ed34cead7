//! What `mb-2fa-store` does: create a store on purpose (`init`), tell an
//! admin whether a store can be trusted (`check`), and the one-time sealing
//! of a version 1 database (`seal_plaintext`).

use std::path::Path;

use crate::account::Ctx;
use crate::audit::{Action, Outcome};
use crate::error::Result;
use crate::key_file;
use crate::keyring::{self, KeySource, Keyring};
use crate::rekey;
use crate::store::{Location, OpenMode, RowCounts, Store};

/// Create a new database at `db` and record the key (made if missing).
/// Exit 10 if a database is already there: nothing is ever overwritten.
pub fn init(db: &Location, key_file: &Path) -> Result<Store> {
    // A key that would be refused refuses the init before anything exists.
    if key_file::load(key_file)?.is_none() {
        key_file::check_can_create(key_file)?;
    }
    let mut store = Store::open(db, OpenMode::Init)?;
    store.unlock(key_file)?;
    Ok(store)
}

/// One line of `mb-2fa-store check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Passed, but worth an admin's attention (a clock a few seconds off).
    pub warning: bool,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, outcome: Result<String>) -> Check {
        match outcome {
            Ok(detail) => Check {
                name,
                ok: true,
                warning: false,
                detail,
            },
            Err(e) => Check {
                name,
                ok: false,
                warning: false,
                detail: e.message().to_string(),
            },
        }
    }
}

/// Above this, this node's clock and the database server's disagree enough
/// to warn: TOTP steps are judged by each node's own clock, so nodes that
/// disagree judge the same code differently.
pub const CLOCK_WARN_SECS: f64 = 5.0;
/// At a whole TOTP step apart, codes are judged a step off: a failure.
pub const CLOCK_FAIL_SECS: f64 = 30.0;

fn clock_check(r: crate::store::ClockReading) -> Check {
    let off = r.offset_secs;
    let detail = format!(
        "this node's clock is {:.3} s {} the database server's (measured in {} ms)",
        off.abs(),
        if off >= 0.0 { "ahead of" } else { "behind" },
        r.round_trip.as_millis()
    );
    if off.abs() >= CLOCK_FAIL_SECS {
        Check::new(
            "clock",
            Err(crate::Error::storage(format!(
                "{detail}: a whole TOTP step; fix time sync (chrony/NTP) on this node or the server"
            ))),
        )
    } else if off.abs() > CLOCK_WARN_SECS {
        Check {
            name: "clock",
            ok: true,
            warning: true,
            detail: format!(
                "{detail}: more than {CLOCK_WARN_SECS} s; check time sync (chrony/NTP)"
            ),
        }
    } else {
        Check::new("clock", Ok(detail))
    }
}

/// Every check of a store, in order; a failed step stops the ones that need
/// it. The store is opened as every other tool opens it (file modes, schema),
/// the key must be the recorded one, every secret must open under it, and
/// SQLite's own check must pass. Changes nothing, but applies pending schema
/// migrations as every tool does.
pub fn check(db: &Location, key_file: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut store = match Store::open(db, OpenMode::MustExist) {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::new("open", Err(e)));
            return checks;
        }
    };
    checks.push(Check::new(
        "open",
        Ok(match db {
            Location::Sqlite(_) => format!("{db} (owner and mode are safe)"),
            Location::Mariadb(_) => format!("{db} (connected)"),
        }),
    ));
    let supported = store.supported_schema_version();
    checks.push(Check::new(
        "schema",
        store
            .schema_version()
            .map(|v| format!("version {v} (this mb-2fa writes {supported})")),
    ));
    checks.push(Check::new(
        "integrity",
        store.integrity_check().and_then(|outcome| match outcome {
            Ok(detail) => Ok(detail),
            Err(msg) => Err(crate::Error::storage(format!(
                "{}; restore the database from backup",
                crate::text::escape_for_terminal(&msg)
            ))),
        }),
    ));
    match store.server_clock() {
        Ok(None) => {}
        Ok(Some(reading)) => checks.push(clock_check(reading)),
        Err(e) => checks.push(Check::new("clock", Err(e))),
    }
    // Check changes nothing: a missing key is a failed check, not a new key.
    match key_file::load(key_file) {
        Ok(Some(_)) => {}
        Ok(None) => {
            checks.push(Check::new(
                "key",
                Err(crate::Error::storage(format!(
                    "key file {} is missing: restore it from backup (or pass --key-file)",
                    key_file.display()
                ))),
            ));
            return checks;
        }
        Err(e) => {
            checks.push(Check::new("key", Err(e)));
            return checks;
        }
    }
    if let Err(e) = store.unlock(key_file) {
        checks.push(Check::new("key", Err(e)));
        return checks;
    }
    let fp = keyring::recorded_fingerprint(&mut store)
        .ok()
        .flatten()
        .unwrap_or_default();
    checks.extend(key_checks(&mut store, key_file, &fp));
    checks.push(Check::new(
        "secrets",
        store.read(|tx| {
            let mut emails = Vec::new();
            tx.for_each_summary(|s| {
                emails.push(s.email);
                Ok(())
            })?;
            for email in &emails {
                tx.account(email)?;
            }
            Ok(format!("all {} open with the key", emails.len()))
        }),
    ));
    checks
}

/// `mb-2fa-store backup FILE`: a consistent, checked copy of an SQLite
/// store in the new file `file` (0600), made while other tools run (see
/// `store::sqlite::backup`). The key file is not in it. A MariaDB store is
/// refused (exit 2): it is dumped with `mariadb-dump --single-transaction`
/// (README, "Backups"). A FILE that exists is exit 5, one that names no
/// file, sits in a missing directory or is the store itself exit 2, a
/// directory others may write exit 10; all before the store is opened but
/// the last.
pub fn backup(db: &Location, file: &Path) -> Result<crate::store::BackupSummary> {
    if let Location::Mariadb(_) = db {
        return Err(crate::Error::usage(format!(
            "{db} is a MariaDB store: mb-2fa-store backup copies an SQLite file only; back it up with mariadb-dump --single-transaction of the mb2fa_% tables (README, \"Backups\")"
        )));
    }
    if let Location::Sqlite(path) = db
        && crate::store::sqlite::is_the_store(path, file)
    {
        return Err(crate::Error::usage(format!(
            "{} is the store itself ({db}): name a new file for the backup, e.g. /root/2fa-backup.db",
            crate::text::escape_for_terminal(&file.to_string_lossy())
        )));
    }
    check_backup_target(file)?;
    let mut store = Store::open(db, OpenMode::MustExist)?;
    store.backup_to(file)
}

/// What a backup's FILE must be: a new name in an existing directory that
/// only its owner may change (or a sticky one, like /tmp).
fn check_backup_target(file: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let f = crate::text::escape_for_terminal(&file.to_string_lossy()).to_string();
    if file.file_name().is_none() {
        return Err(crate::Error::usage(format!(
            "backup FILE {f:?} names no file: give the new backup file's path, e.g. /root/2fa-backup.db"
        )));
    }
    let dir = crate::secure_open::parent_dir(file);
    let d = crate::text::escape_for_terminal(&dir.to_string_lossy()).to_string();
    let meta = match std::fs::metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::Error::usage(format!(
                "directory {d} of backup {f} does not exist: create it first (mkdir -m 0700 {d})"
            )));
        }
        Err(e) => {
            return Err(crate::Error::usage(format!(
                "cannot use directory {d} of backup {f}: {e}"
            )));
        }
    };
    if !meta.is_dir() {
        return Err(crate::Error::usage(format!(
            "{d}, the directory of backup {f}, is not a directory"
        )));
    }
    match std::fs::symlink_metadata(file) {
        Ok(m) if m.is_dir() => {
            return Err(crate::Error::usage(format!(
                "{f} is a directory: name the backup file in it, e.g. {}",
                crate::text::escape_for_terminal(&file.join("2fa-backup.db").to_string_lossy())
            )));
        }
        Ok(m) if m.file_type().is_symlink() => {
            return Err(crate::Error::conflict(format!(
                "{f} already exists (a symbolic link): a backup never replaces or follows a file; name a new one"
            )));
        }
        Ok(_) => return Err(crate::store::sqlite::backup_exists(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(crate::Error::usage(format!("cannot use backup {f}: {e}")));
        }
    }
    let mode = meta.mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(crate::Error::storage(format!(
            "directory {d} of backup {f} is writable by group or others (mode {:04o}): anyone could swap the backup; choose a directory only root may write (mkdir -m 0700 /root/2fa-backups)",
            mode & 0o7777
        )));
    }
    Ok(())
}

/// The key lines of `check`: which key file this node used and what it
/// holds against what the store records, and where a key rotation stands
/// (`mb-2fa-store rekey`): one line each, a warning while something is left
/// to do.
fn key_checks(store: &mut Store, key_file: &Path, fp: &str) -> Vec<Check> {
    let paths = rekey::KeyPaths::of(key_file);
    let (rec, disk) = match (rekey::recorded(store), rekey::on_disk(&paths)) {
        (Ok(r), Ok(d)) => (r, d),
        (Err(e), _) | (_, Err(e)) => return vec![Check::new("key", Err(e))],
    };
    let held = |f: &Option<String>| f.clone().unwrap_or_else(|| "no key (absent)".to_string());
    let warn = |name, detail: String| Check {
        name,
        ok: true,
        warning: true,
        detail,
    };
    let mut out = Vec::new();
    let source = store.keyring().map(|k| k.source());
    out.push(match source {
        Some(KeySource::New) => warn(
            "key",
            format!(
                "{} holds {}, the store records {fp}, which {} holds: this node works; run mb-2fa-store rekey on it to move the new key into place",
                paths.key.display(),
                held(&disk.key),
                paths.new.display()
            ),
        ),
        Some(KeySource::Old) => warn(
            "key",
            format!(
                "the store is sealed with the previous key {fp} ({}), not with {} ({}): run mb-2fa-store rekey to re-seal it",
                paths.old.display(),
                paths.key.display(),
                held(&disk.key)
            ),
        ),
        _ => Check::new(
            "key",
            Ok(format!(
                "{} holds key {fp}, the recorded key",
                key_file.display()
            )),
        ),
    });
    match (&rec.old, &disk.old, &disk.new) {
        (Some(old), on_node, _) => out.push(warn(
            "rotation",
            format!(
                "key rotation from {old} to {fp} not finished ({} on this node: {}); once mb-2fa-store check shows key {fp} on every node, run mb-2fa-store rekey --finish on each",
                paths.old.display(),
                held(on_node)
            ),
        )),
        (None, Some(on_node), _) => out.push(warn(
            "rotation",
            format!(
                "{} ({on_node}) is no longer needed by the store: run mb-2fa-store rekey --finish to remove it",
                paths.old.display()
            ),
        )),
        (None, None, Some(new)) if source == Some(KeySource::File) => out.push(warn(
            "rotation",
            format!(
                "{} holds a prepared key {new}: copy it to every node as {}, then run mb-2fa-store rekey",
                paths.new.display(),
                paths.new.display()
            ),
        )),
        _ => {}
    }
    out
}

/// Seal the plaintext secrets of a version 1 database, once, audited.
pub fn seal_plaintext(store: &mut Store, ctx: &Ctx<'_>, key_file: &Path) -> Result<usize> {
    let now = ctx.clock.now()?;
    Keyring::seal_plaintext(store, key_file, |n| {
        ctx.record(
            now,
            Action::SealPlaintext,
            None,
            Outcome::Ok,
            format!("{n} plaintext secrets of a version 1 database sealed"),
        )
    })
}

/// `mb-2fa-store copy --to TARGET`: every row of `from` (sealed secrets as
/// they are, replay floors, lockouts, policy, exemptions, first-seen times,
/// the audit trail) into `to`, created if absent, in one transaction on the
/// target read from one snapshot of the source. A target that holds
/// accounts is refused (exit 5) unless `force`, which first removes its
/// accounts, codes, settings and exemptions (its audit trail stays and the
/// source's follows). The target's audit trail gets a `copy` record.
pub fn copy(from: &mut Store, to: &Location, force: bool, ctx: &Ctx<'_>) -> Result<RowCounts> {
    let source = from.describe();
    let mut target = Store::open(to, OpenMode::CopyTarget)?;
    let name = target.describe();
    if same_store(&source, &name, to) {
        return Err(crate::Error::usage(format!(
            "{name} is the store being copied: choose another target"
        )));
    }
    let now = ctx.clock.now()?;
    from.read(|src| {
        target.write(|dst| {
            let existing = dst.count_accounts()?;
            if existing > 0 && !force {
                return Err(crate::Error::conflict(format!(
                    "{name} already holds {existing} account(s): nothing was copied; pass --force to replace them (its audit trail is kept)"
                )));
            }
            if force {
                dst.clear()?;
            }
            let mut counts = RowCounts::default();
            src.dump(|row| {
                counts.count(&row);
                dst.load(&row)
            })?;
            dst.append_audit(ctx.record(
                now,
                Action::Copy,
                None,
                Outcome::Ok,
                format!(
                    "copied from {source}: {} account(s), {} backup code(s), {} audit record(s){}",
                    counts.accounts,
                    counts.backup_codes,
                    counts.audit,
                    if force && existing > 0 {
                        format!("; replaced {existing} account(s)")
                    } else {
                        String::new()
                    }
                ),
            ))?;
            Ok(counts)
        })
    })
}

/// Whether the source and the target are one store (a copy onto itself
/// would wait for its own lock, or with `--force` empty what it reads).
fn same_store(source: &str, target: &str, to: &Location) -> bool {
    if source == target {
        return true;
    }
    match to {
        Location::Sqlite(p) => {
            let canon = |s: &str| {
                Path::new(s.trim_start_matches("database "))
                    .canonicalize()
                    .ok()
            };
            let t = p.canonicalize().ok();
            t.is_some() && t == canon(source)
        }
        Location::Mariadb(_) => false,
    }
}
