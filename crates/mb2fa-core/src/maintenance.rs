//! What `mb-2fa-store` does: create a store on purpose (`init`), tell an
//! admin whether a store can be trusted (`check`), and the one-time sealing
//! of a version 1 database (`seal_plaintext`).

use std::path::Path;

use crate::account::Ctx;
use crate::audit::{Action, Outcome};
use crate::error::Result;
use crate::key_file;
use crate::keyring::{self, Keyring};
use crate::store::{Location, OpenMode, Store};

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
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, outcome: Result<String>) -> Check {
        match outcome {
            Ok(detail) => Check {
                name,
                ok: true,
                detail,
            },
            Err(e) => Check {
                name,
                ok: false,
                detail: e.message().to_string(),
            },
        }
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
        Ok(format!("{db} (owner and mode are safe)")),
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
    checks.push(Check::new(
        "key",
        Ok(format!(
            "{} matches the recorded key {fp}",
            key_file.display()
        )),
    ));
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
