//! The key's life above the store: load it (or create it, when nothing is
//! sealed yet), check it is the key the store's secrets are sealed with,
//! and seal and open secrets. The store only keeps opaque sealed bytes and
//! the key's fingerprint (a setting); which key may take over a store, and
//! when, is decided here, the same for every backend.

use std::path::Path;

use crate::audit::Record;
use crate::crypto::{self, MasterKey};
use crate::error::{Error, Result};
use crate::key_file;
use crate::secret::Secret;
use crate::store::Store;

/// The setting holding the fingerprint of the key this store's secrets are
/// sealed with, recorded with the first enrollment (or by `mb-2fa-store
/// init` / `seal-plaintext`). A store with accounts but no fingerprint is
/// never trusted: see [`Keyring::unlock`].
pub(crate) const KEY_FINGERPRINT: &str = "key_fingerprint";

/// While a key rotation is not finished (`mb-2fa-store rekey`, until
/// `rekey --finish`): the fingerprint of the previous key, kept beside the
/// key file as `2fa.key.old`.
pub(crate) const KEY_FINGERPRINT_OLD: &str = "key_fingerprint_old";

/// After `rekey --finish`: the fingerprint of the key the last rotation
/// retired, so a node still holding it is told to copy the new key.
pub(crate) const KEY_FINGERPRINT_RETIRED: &str = "key_fingerprint_retired";

/// Which of the key files the store's key was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The key file itself (`2fa.key`): the usual case.
    File,
    /// `2fa.key.new`: a rotation re-sealed the store with it, and this node
    /// has not moved it into place yet (an interrupted `rekey`, or a node
    /// that got the prepared key before the rotation).
    New,
    /// `2fa.key.old`: the store is sealed with the key a rotation is
    /// replacing (a database restored from a backup older than it).
    Old,
}

/// The loaded key of an unlocked store.
#[derive(Debug, Clone)]
pub struct Keyring {
    key: MasterKey,
    source: KeySource,
}

impl Keyring {
    /// Load the key (creating it when the store holds no account and no key
    /// was ever recorded, or the recorded key sealed nothing any more) and
    /// check it is this store's key. A wrong or missing key is exit 10 and
    /// changes nothing.
    ///
    /// Never seals anything: a store with accounts but no recorded key
    /// fingerprint is refused, because a database writer can delete that
    /// record (sealing "plaintext" then would re-seal whatever bytes they
    /// chose). Sealing a real version 1 database is the explicit, audited
    /// [`Keyring::seal_plaintext`].
    pub fn unlock(store: &mut Store, key_path: &Path) -> Result<Keyring> {
        // The usual case needs no write lock: key present and matching.
        let loaded = key_file::load(key_path)?;
        let recorded = recorded_fingerprint(store)?;
        if let (Some(key), Some(fp)) = (loaded, &recorded)
            && *fp == key.fingerprint()
        {
            return Ok(Keyring {
                key,
                source: KeySource::File,
            });
        }
        // Not the recorded key (or none): a key rotation may be under way.
        if let Some(fp) = &recorded
            && let Some(keyring) = rotation_key(store, key_path, fp)?
        {
            return Ok(keyring);
        }
        let name = store.describe();
        store.write(|tx| {
            let fp = tx.setting(KEY_FINGERPRINT)?;
            let accounts = tx.count_accounts()?;
            let key = match (key_file::load(key_path)?, &fp) {
                (Some(key), Some(fp)) if *fp != key.fingerprint() => {
                    return Err(Error::storage(format!(
                        "key file {} (fingerprint {}) is not the key of {name} (fingerprint {fp}): restore the right key file from backup; nothing was changed",
                        key_path.display(),
                        key.fingerprint(),
                    )));
                }
                (_, None) if accounts > 0 => return Err(unrecorded_key(&name, accounts)),
                (Some(key), _) => key,
                // Nothing is sealed (a new store, or every account was
                // removed after the key was lost): a new key can take over.
                (None, _) if accounts == 0 => key_file::create(key_path)?,
                (None, Some(fp)) => {
                    return Err(Error::storage(format!(
                        "key file {} is missing, and the secrets in {name} are sealed with key {fp}: restore the key file from backup or pass --key-file (mb-2fa-disable works without it)",
                        key_path.display(),
                    )));
                }
                (None, None) => return Err(unrecorded_key(&name, accounts)),
            };
            if fp.as_deref() != Some(key.fingerprint().as_str()) {
                tx.set_setting(KEY_FINGERPRINT, &key.fingerprint())?;
            }
            Ok(Keyring {
                key,
                source: KeySource::File,
            })
        })
    }

    /// `mb-2fa-store seal-plaintext`: the one-time step that seals the
    /// plaintext secrets of a version 1 database (mb-2fa built from source
    /// before sealing existed; no package ever shipped one). Refused when a
    /// key is already recorded, when the key file exists, or when any secret
    /// already looks sealed, so it can never re-seal sealed bytes or seal
    /// with a key someone else chose. Creates the key. One transaction with
    /// its audit record (`record(n)` for `n` sealed secrets); the store is
    /// unlocked afterwards.
    pub fn seal_plaintext(
        store: &mut Store,
        key_path: &Path,
        record: impl Fn(usize) -> Record,
    ) -> Result<usize> {
        let name = store.describe();
        let (n, keyring) = store.write(|tx| {
            if let Some(fp) = tx.setting(KEY_FINGERPRINT)? {
                return Err(Error::conflict(format!(
                    "{name} already records key {fp}: its secrets are sealed; nothing was changed"
                )));
            }
            let rows = tx.secrets()?;
            if let Some(r) = rows
                .iter()
                .find(|r| !crypto::is_plausible_plaintext(&r.sealed_secret))
            {
                return Err(Error::storage(format!(
                    "the stored secret of {} in {name} is not a plaintext version 1 secret (it looks sealed or damaged): refusing to seal anything; this is not a version 1 database, or it was altered: restore it from backup",
                    crate::text::escape_for_terminal(&r.email),
                )));
            }
            if key_file::load(key_path)?.is_some() {
                // A version 1 database never had a key: one beside it means
                // its secrets were sealed once (and the record deleted).
                return Err(Error::storage(format!(
                    "key file {} exists, but a version 1 database never had one: refusing to seal; if it was left by an interrupted seal-plaintext of this database, move it away and run again; nothing was changed",
                    key_path.display()
                )));
            }
            let keyring = Keyring {
                key: key_file::create(key_path)?,
                source: KeySource::File,
            };
            for r in &rows {
                let secret = Secret::from_bytes(r.sealed_secret.clone());
                let sealed = keyring.seal(&secret, &r.email, r.created_at)?;
                tx.replace_secret(r.id, &sealed)?;
            }
            tx.set_setting(KEY_FINGERPRINT, &keyring.key.fingerprint())?;
            tx.append_audit(record(rows.len()))?;
            Ok((rows.len(), keyring))
        })?;
        // Not left to housekeeping: until the sealed pages reach the main
        // file, a copy of that file alone would still hold the plaintext.
        store.flush();
        store.set_keyring(keyring);
        Ok(n)
    }

    pub fn fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    /// Which key file the key came from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// What to tell an admin when the key did not come from the key file
    /// itself (one line for stderr; stdout stays the tool's answer).
    pub fn note(&self, key_path: &Path) -> Option<String> {
        let fp = self.fingerprint();
        match self.source {
            KeySource::File => None,
            KeySource::New => Some(format!(
                "using key file {} (fingerprint {fp}): the database was re-sealed with it by mb-2fa-store rekey, and it is not yet in place as {}; run: mb-2fa-store rekey (it moves it there)",
                key_file::sibling(key_path, key_file::NEW_SUFFIX).display(),
                key_path.display()
            )),
            KeySource::Old => Some(format!(
                "using key file {} (fingerprint {fp}): the database is sealed with the key a rotation replaced (restored from a backup older than it?); run: mb-2fa-store rekey (it re-seals it with {})",
                key_file::sibling(key_path, key_file::OLD_SUFFIX).display(),
                key_path.display()
            )),
        }
    }

    pub(crate) fn from_key(key: MasterKey, source: KeySource) -> Keyring {
        Keyring { key, source }
    }

    /// Seal `secret`, bound to its account (`email`, `created_at`).
    pub fn seal(&self, secret: &Secret, email: &str, created_at: i64) -> Result<Vec<u8>> {
        crypto::seal(&self.key, secret, email, created_at)
    }

    /// Re-seal a secret of the account (`email`, `created_at`) sealed with
    /// this key under `next`'s, keeping its identity ([`crypto::reseal`]).
    pub(crate) fn reseal_for(
        &self,
        next: &Keyring,
        sealed: &[u8],
        email: &str,
        created_at: i64,
    ) -> Result<Vec<u8>> {
        crypto::reseal(&self.key, &next.key, sealed, email, created_at)
    }

    /// Open a sealed secret of the account (`email`, `created_at`).
    pub fn open(&self, sealed: &[u8], email: &str, created_at: i64) -> Result<Secret> {
        crypto::open(&self.key, sealed, email, created_at)
    }
}

/// The fingerprint of the key the store records, if any.
pub fn recorded_fingerprint(store: &mut Store) -> Result<Option<String>> {
    store.read(|tx| tx.setting(KEY_FINGERPRINT))
}

/// The store records `fp`, which the key file does not hold: find it among
/// a rotation's files (`2fa.key.new`, `2fa.key.old`; [`Keyring::note`] says
/// which was used), or, when the key file holds the key a rotation replaced, refuse with the
/// fix (copy the new key). `None`: neither; the caller says what is wrong.
fn rotation_key(store: &mut Store, key_path: &Path, fp: &str) -> Result<Option<Keyring>> {
    let new_path = key_file::sibling(key_path, key_file::NEW_SUFFIX);
    let old_path = key_file::sibling(key_path, key_file::OLD_SUFFIX);
    // Twice: `rekey` may move `.new` over the key file between our reads.
    for _ in 0..2 {
        for (path, source) in [
            (key_path, KeySource::File),
            (new_path.as_path(), KeySource::New),
            (old_path.as_path(), KeySource::Old),
        ] {
            let Some(key) = key_file::load(path)? else {
                continue;
            };
            if key.fingerprint() != fp {
                continue;
            }
            return Ok(Some(Keyring { key, source }));
        }
    }
    let Some(key) = key_file::load(key_path)? else {
        return Ok(None);
    };
    let mine = key.fingerprint();
    let (old, retired) = store.read(|tx| {
        Ok((
            tx.setting(KEY_FINGERPRINT_OLD)?,
            tx.setting(KEY_FINGERPRINT_RETIRED)?,
        ))
    })?;
    if old.as_deref() == Some(mine.as_str()) || retired.as_deref() == Some(mine.as_str()) {
        return Err(Error::storage(format!(
            "key file {} holds the previous key (fingerprint {mine}), but {} was re-keyed to key {fp} (mb-2fa-store rekey): copy the new key file {} (and {}) from the node that ran it, then run: mb-2fa-store check; nothing was changed",
            key_path.display(),
            store.describe(),
            key_path.display(),
            old_path.display(),
        )));
    }
    Ok(None)
}

/// Accounts but no recorded key: altered by a database writer, or a
/// version 1 database. Either way nothing is sealed or trusted.
fn unrecorded_key(name: &str, accounts: i64) -> Error {
    Error::storage(format!(
        "{name} holds {accounts} account(s) but records no key fingerprint: it was altered (restore it from backup), or it is a version 1 database with plaintext secrets (mb-2fa built from source before 0.1; then seal them once: mb-2fa-store seal-plaintext); nothing was changed"
    ))
}
