//! Key rotation (`mb-2fa-store rekey`): a new key, every secret re-sealed
//! with it in one transaction, the previous key kept beside it as
//! `2fa.key.old` until `rekey --finish`.
//!
//! The files and the database change in an order that leaves, after a crash
//! at any point, a store that one of the key files opens (`Keyring::unlock`
//! looks in `2fa.key`, then `2fa.key.new` and `2fa.key.old`, and takes the
//! one whose fingerprint the store records):
//!
//! 1. `2fa.key.new` is written whole (a temporary file, 0400, fsync'd, then
//!    linked to its name without replacing anything, directory fsync'd).
//!    The store still records the old key; every tool uses `2fa.key`.
//! 2. One transaction opens every secret with the old key, seals it with the
//!    new one, and records the new fingerprint as `key_fingerprint` and the
//!    old one as `key_fingerprint_old`, with its audit record. Before its
//!    commit nothing changed; after it, the tools find the new key in
//!    `2fa.key.new`.
//! 3. `2fa.key` gets a second name, `2fa.key.old` (a hard link; directory
//!    fsync'd), then `2fa.key.new` is renamed over `2fa.key` (fsync'd).
//!
//! Run again after a crash, `rekey` resumes from what it finds: a
//! `2fa.key.new` the store does not record yet is the key of step 2 (never a
//! third key); one the store records means step 3 is still to do. A store
//! sealed with the key in `2fa.key.old` (a database restored from a backup
//! older than the rotation) is re-sealed with `2fa.key`.
//!
//! `rekey --finish` checks in one transaction that every secret opens with
//! `2fa.key` and the store records it, then forgets the old fingerprint
//! (keeping it as `key_fingerprint_retired`, so a node that still holds it is
//! told to copy the new key) and removes `2fa.key.old`.
//!
//! `rekey --prepare` does step 1 alone, so that on a cluster the new key can
//! reach every node before any secret is sealed with it.

use std::path::{Path, PathBuf};

use crate::account::Ctx;
use crate::audit::{Action, Outcome};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::key_file;
use crate::keyring::{
    KEY_FINGERPRINT, KEY_FINGERPRINT_OLD, KEY_FINGERPRINT_RETIRED, KeySource, Keyring,
};
use crate::store::Store;

/// The key file and the two files of a rotation beside it.
#[derive(Debug, Clone)]
pub struct KeyPaths {
    pub key: PathBuf,
    pub new: PathBuf,
    pub old: PathBuf,
}

impl KeyPaths {
    pub fn of(key: &Path) -> KeyPaths {
        KeyPaths {
            key: key.to_path_buf(),
            new: key_file::sibling(key, key_file::NEW_SUFFIX),
            old: key_file::sibling(key, key_file::OLD_SUFFIX),
        }
    }
}

/// What the store records about its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The key every secret is sealed with.
    pub current: Option<String>,
    /// The key a rotation replaced, until `rekey --finish`.
    pub old: Option<String>,
    /// The key the last finished rotation retired.
    pub retired: Option<String>,
}

pub fn recorded(store: &mut Store) -> Result<Recorded> {
    store.read(|tx| {
        Ok(Recorded {
            current: tx.setting(KEY_FINGERPRINT)?,
            old: tx.setting(KEY_FINGERPRINT_OLD)?,
            retired: tx.setting(KEY_FINGERPRINT_RETIRED)?,
        })
    })
}

/// The fingerprints of the key files this node holds (`None`: absent).
/// A file that is there but cannot be trusted is an error naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnDisk {
    pub key: Option<String>,
    pub new: Option<String>,
    pub old: Option<String>,
}

pub fn on_disk(paths: &KeyPaths) -> Result<OnDisk> {
    let fp = |p: &Path| Ok::<_, Error>(key_file::load(p)?.map(|k| k.fingerprint()));
    Ok(OnDisk {
        key: fp(&paths.key)?,
        new: fp(&paths.new)?,
        old: fp(&paths.old)?,
    })
}

/// What `rekey` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// Secrets re-sealed by this run; `None` when an earlier, interrupted
    /// run had committed the re-seal and this one only moved the files.
    pub resealed: Option<usize>,
    /// This run picked up a `2fa.key.new` left by an earlier one.
    pub resumed: bool,
    /// Temporary key files of killed runs removed (see [`tidy`]).
    pub removed_temporaries: Vec<PathBuf>,
}

/// `mb-2fa-store rekey`. The store must be unlocked (with whichever key
/// file opens it).
pub fn rekey(store: &mut Store, key_path: &Path, ctx: &Ctx<'_>) -> Result<Rekeyed> {
    let paths = KeyPaths::of(key_path);
    let current = loaded_key(store)?;
    let rec = recorded(store)?;
    let cur_fp = current.fingerprint();
    match (current.source(), rec.old.clone()) {
        (KeySource::File, Some(old)) => Err(Error::conflict(format!(
            "the key was already changed from {old} to {cur_fp}, and the rotation is not finished: copy {} (and {}) to every node that shares {}, run mb-2fa-store check on each, then run: mb-2fa-store rekey --finish; nothing was changed",
            paths.key.display(),
            paths.old.display(),
            store.describe(),
        ))),
        (KeySource::New, Some(old)) => {
            move_into_place(&paths, &old)?;
            Ok(Rekeyed {
                old_fingerprint: old,
                new_fingerprint: cur_fp,
                resealed: None,
                resumed: true,
                removed_temporaries: tidy(&paths)?,
            })
        }
        (KeySource::File, None) => {
            // The old key must not overwrite (or be confused with) an
            // `.old` that holds anything else.
            let disk = on_disk(&paths)?;
            if let Some(o) = disk.old.as_deref().filter(|o| *o != cur_fp) {
                return Err(Error::conflict(format!(
                    "{} exists and holds key {o}, which {} no longer needs: remove it first (mb-2fa-store rekey --finish does, after checking), then run rekey again; nothing was changed",
                    paths.old.display(),
                    store.describe(),
                )));
            }
            let (new, resumed) = match key_file::load(&paths.new)? {
                Some(k) => (k, true),
                None => (key_file::create(&paths.new)?, false),
            };
            if new.fingerprint() == cur_fp {
                return Err(Error::storage(format!(
                    "{} holds the same key as {}: remove it, then run rekey again",
                    paths.new.display(),
                    paths.key.display()
                )));
            }
            let n = reseal(store, &current, new.clone(), KeySource::New, ctx)?;
            move_into_place(&paths, &cur_fp)?;
            store.set_keyring(Keyring::from_key(new.clone(), KeySource::File));
            Ok(Rekeyed {
                old_fingerprint: cur_fp,
                new_fingerprint: new.fingerprint(),
                resealed: Some(n),
                resumed,
                removed_temporaries: tidy(&paths)?,
            })
        }
        (KeySource::Old, None) => {
            // A store older than the rotation: re-seal it with the key file.
            if key_file::load(&paths.new)?.is_some() {
                return Err(Error::conflict(format!(
                    "{} is sealed with the previous key ({}), and {} exists too: it is unclear which key is next; move {} away, then run rekey again; nothing was changed",
                    store.describe(),
                    paths.old.display(),
                    paths.new.display(),
                    paths.new.display()
                )));
            }
            let new = key_file::load(&paths.key)?.ok_or_else(|| {
                Error::storage(format!(
                    "key file {} is missing: restore it from backup",
                    paths.key.display()
                ))
            })?;
            let n = reseal(store, &current, new.clone(), KeySource::File, ctx)?;
            Ok(Rekeyed {
                old_fingerprint: cur_fp,
                new_fingerprint: new.fingerprint(),
                resealed: Some(n),
                resumed: true,
                removed_temporaries: tidy(&paths)?,
            })
        }
        (source, old) => Err(Error::storage(format!(
            "{} records key {cur_fp}{}, which only {} holds: the key files were moved by hand; put the key back as {}, then run: mb-2fa-store check; nothing was changed",
            store.describe(),
            old.map(|o| format!(" (and the previous key {o})"))
                .unwrap_or_default(),
            match source {
                KeySource::New => paths.new.display(),
                _ => paths.old.display(),
            },
            paths.key.display(),
        ))),
    }
}

/// Step 2: in one transaction, every secret opened with `current` and
/// sealed with `new`, both fingerprints recorded, audited. Judged again
/// inside the transaction: the store must still record `current` and no
/// unfinished rotation. The number of secrets re-sealed.
fn reseal(
    store: &mut Store,
    current: &Keyring,
    new: MasterKey,
    new_source: KeySource,
    ctx: &Ctx<'_>,
) -> Result<usize> {
    let now = ctx.clock.now()?;
    let cur_fp = current.fingerprint();
    let next = Keyring::from_key(new, new_source);
    let new_fp = next.fingerprint();
    let name = store.describe();
    let n = store.write(|tx| {
        if tx.setting(KEY_FINGERPRINT)?.as_deref() != Some(cur_fp.as_str())
            || tx.setting(KEY_FINGERPRINT_OLD)?.is_some()
        {
            return Err(Error::conflict(format!(
                "the key of {name} changed while rekey was starting (another rekey?): run mb-2fa-store check, then rekey again; nothing was changed"
            )));
        }
        let rows = tx.secrets()?;
        for r in &rows {
            // The nonce moves with it: the enrollment stays the same one
            // for a backup code being checked across this commit.
            let sealed = current
                .reseal_for(&next, &r.sealed_secret, &r.email, r.created_at)
                .map_err(|e| tx.in_db(&e))?;
            tx.replace_secret(r.id, &sealed)?;
        }
        tx.set_setting(KEY_FINGERPRINT, &new_fp)?;
        tx.set_setting(KEY_FINGERPRINT_OLD, &cur_fp)?;
        tx.append_audit(ctx.record(
            now,
            Action::Rekey,
            None,
            Outcome::Ok,
            format!(
                "{} secret(s) re-sealed with key {new_fp}; the previous key {cur_fp} is kept until rekey --finish",
                rows.len()
            ),
        ))?;
        Ok(rows.len())
    })?;
    // The pages sealed with the old key leave the log now.
    store.flush();
    Ok(n)
}

/// Step 3: keep the key file (the old key, `old_fp`) as `2fa.key.old`, then
/// move `2fa.key.new` over the key file. Each step is checked first and
/// skipped when an earlier run did it.
/// The key the store was unlocked with (each step starts from it).
fn loaded_key(store: &Store) -> Result<Keyring> {
    store
        .keyring()
        .cloned()
        .ok_or_else(|| Error::storage("internal error: rekey before unlock"))
}

fn move_into_place(paths: &KeyPaths, old_fp: &str) -> Result<()> {
    let disk = on_disk(paths)?;
    match (&disk.key, &disk.old) {
        (_, Some(o)) if o == old_fp => {}
        (Some(k), None) if k == old_fp => {
            key_file::link_noclobber(&paths.key, &paths.old)?;
        }
        // No old key here to keep (an admin copied only the new key).
        (None, None) => {}
        (k, o) => {
            return Err(Error::storage(format!(
                "{} holds {} and {} holds {}, but the previous key is {old_fp}: move the file that is neither key away, then run rekey again",
                paths.key.display(),
                k.as_deref().unwrap_or("nothing"),
                paths.old.display(),
                o.as_deref().unwrap_or("nothing"),
            )));
        }
    }
    key_file::replace(&paths.new, &paths.key)
}

/// After a run succeeded: remove what earlier runs killed while writing a
/// key file left in its directory (`.2fa.key.new-XXXXXX`, 0400; see
/// [`key_file::remove_stale_temporaries`] for what is never removed). Done
/// last, so a refused run changes nothing, and a file still being written
/// by another process (younger than a minute) is left to it.
fn tidy(paths: &KeyPaths) -> Result<Vec<PathBuf>> {
    key_file::remove_stale_temporaries(&paths.key)
}

/// What `rekey --prepare` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub new_fingerprint: String,
    /// False when `2fa.key.new` was there already.
    pub created: bool,
    /// Temporary key files of killed runs removed (see [`tidy`]).
    pub removed_temporaries: Vec<PathBuf>,
}

/// `mb-2fa-store rekey --prepare`: step 1 alone. Nothing in the store
/// changes; every tool keeps using `2fa.key`.
pub fn prepare(store: &mut Store, key_path: &Path) -> Result<Prepared> {
    let paths = KeyPaths::of(key_path);
    let current = loaded_key(store)?;
    let rec = recorded(store)?;
    if current.source() != KeySource::File || rec.old.is_some() {
        return Err(Error::conflict(format!(
            "a key rotation of {} is under way: run mb-2fa-store rekey (or rekey --finish) instead; nothing was changed",
            store.describe()
        )));
    }
    let (new, created) = match key_file::load(&paths.new)? {
        Some(k) => (k, false),
        None => (key_file::create(&paths.new)?, true),
    };
    Ok(Prepared {
        new_fingerprint: new.fingerprint(),
        created,
        removed_temporaries: tidy(&paths)?,
    })
}

/// What `rekey --finish` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub fingerprint: String,
    /// The key no longer recorded, if this run retired one.
    pub retired: Option<String>,
    /// Whether `2fa.key.old` was removed.
    pub removed_old_file: bool,
    /// Secrets checked to open with the key.
    pub checked: usize,
    /// Temporary key files of killed runs removed (see [`tidy`]).
    pub removed_temporaries: Vec<PathBuf>,
}

/// `mb-2fa-store rekey --finish`. Refused unless the store is unlocked with
/// the key file itself and every secret opens with it.
pub fn finish(store: &mut Store, key_path: &Path, ctx: &Ctx<'_>) -> Result<Finished> {
    let paths = KeyPaths::of(key_path);
    let current = loaded_key(store)?;
    let fp = current.fingerprint();
    match current.source() {
        KeySource::File => {}
        KeySource::New => {
            return Err(Error::conflict(format!(
                "the store is sealed with {}, which is not yet in place as {}: run mb-2fa-store rekey first; the old key is still needed, nothing was changed",
                paths.new.display(),
                paths.key.display()
            )));
        }
        KeySource::Old => {
            return Err(Error::conflict(format!(
                "the store is sealed with the previous key in {}: run mb-2fa-store rekey first (it re-seals it with {}); the old key is still needed, nothing was changed",
                paths.old.display(),
                paths.key.display()
            )));
        }
    }
    let now = ctx.clock.now()?;
    let name = store.describe();
    let (retired, checked) = store.write(|tx| {
        if tx.setting(KEY_FINGERPRINT)?.as_deref() != Some(fp.as_str()) {
            return Err(Error::conflict(format!(
                "the key of {name} changed meanwhile: run mb-2fa-store check, then rekey --finish again; nothing was changed"
            )));
        }
        let rows = tx.secrets()?;
        for r in &rows {
            current
                .open(&r.sealed_secret, &r.email, r.created_at)
                .map_err(|_| {
                    Error::storage(format!(
                        "the secret of {} in {name} does not open with {}: the old key may still be needed; not finishing, {} is kept",
                        crate::text::escape_for_terminal(&r.email),
                        paths.key.display(),
                        paths.old.display()
                    ))
                })?;
        }
        let old = tx.setting(KEY_FINGERPRINT_OLD)?;
        if let Some(old) = &old {
            tx.delete_setting(KEY_FINGERPRINT_OLD)?;
            tx.set_setting(KEY_FINGERPRINT_RETIRED, old)?;
            tx.append_audit(ctx.record(
                now,
                Action::RekeyFinish,
                None,
                Outcome::Ok,
                format!(
                    "all {} secret(s) open with key {fp}; the previous key {old} is retired and its file removed",
                    rows.len()
                ),
            ))?;
        }
        Ok((old, rows.len()))
    })?;
    // The old key file goes only once the store no longer records it. A
    // file there that is not a trusted key file is refused, not removed.
    let removed_old_file = match key_file::load(&paths.old)? {
        Some(_) => key_file::remove(&paths.old)?,
        None => false,
    };
    Ok(Finished {
        fingerprint: fp,
        retired,
        removed_old_file,
        checked,
        removed_temporaries: tidy(&paths)?,
    })
}
