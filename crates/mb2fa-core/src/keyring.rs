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

/// The loaded key of an unlocked store.
#[derive(Debug)]
pub struct Keyring {
    key: MasterKey,
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
        if let Some(key) = key_file::load(key_path)? {
            let fp = recorded_fingerprint(store)?;
            if fp.as_deref() == Some(key.fingerprint().as_str()) {
                return Ok(Keyring { key });
            }
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
            Ok(Keyring { key })
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

    /// Seal `secret`, bound to its account (`email`, `created_at`).
    pub fn seal(&self, secret: &Secret, email: &str, created_at: i64) -> Result<Vec<u8>> {
        crypto::seal(&self.key, secret, email, created_at)
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

/// Accounts but no recorded key: altered by a database writer, or a
/// version 1 database. Either way nothing is sealed or trusted.
fn unrecorded_key(name: &str, accounts: i64) -> Error {
    Error::storage(format!(
        "{name} holds {accounts} account(s) but records no key fingerprint: it was altered (restore it from backup), or it is a version 1 database with plaintext secrets (mb-2fa built from source before 0.1; then seal them once: mb-2fa-store seal-plaintext); nothing was changed"
    ))
}
