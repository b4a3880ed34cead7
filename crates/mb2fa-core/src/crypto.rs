//! Sealing TOTP secrets at rest: XChaCha20-Poly1305 under the 32-byte key of
//! the key file, with a random 24-byte nonce per enrollment (no counter to
//! keep, no reuse risk; a key rotation moves it to the new key, see
//! [`reseal`]) and associated data that names the account, so a sealed secret
//! copied into another account's row does not open.
//!
//! Stored form: `version (1 byte) || nonce (24) || ciphertext + tag`.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::{Secret, fill_random};

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const FORMAT_V1: u8 = 1;

/// The master key. Zeroized on drop; `Debug` shows only its fingerprint.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    pub fn generate() -> Result<MasterKey> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(k.as_mut())?;
        Ok(MasterKey(k))
    }

    /// `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<MasterKey> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(MasterKey(Zeroizing::new(arr)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// A short public name for the key (16 hex digits of a domain-separated
    /// SHA-256), stored in the database so a wrong key file is recognised
    /// before anything is decrypted or written.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mb-2fa key fingerprint v1\0");
        h.update(self.as_bytes());
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305> {
        XChaCha20Poly1305::new_from_slice(self.as_bytes())
            .map_err(|_| Error::storage("internal error: bad key length"))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(fingerprint {})", self.fingerprint())
    }
}

/// What a sealed secret is bound to: the account's email and the time its
/// enrollment was made (so a secret from an older enrollment of the same
/// email does not open either).
fn associated_data(email: &str, created_at: i64) -> Vec<u8> {
    let mut aad = b"mb-2fa totp secret v1\0".to_vec();
    aad.extend_from_slice(&(email.len() as u64).to_be_bytes());
    aad.extend_from_slice(email.as_bytes());
    aad.extend_from_slice(&created_at.to_be_bytes());
    aad
}

pub fn seal(key: &MasterKey, secret: &Secret, email: &str, created_at: i64) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    seal_with_nonce(key, &nonce, secret, email, created_at)
}

/// Open `sealed` with `from` and seal it with `to` (`mb-2fa-store rekey`),
/// keeping its nonce, so that [`seal_identity`], and with it the
/// enrollment's identity ([`crate::model::EnrollmentRef`]), survives the
/// re-seal: an operation that spans two transactions (a backup code's
/// check) must not take a re-sealed enrollment for a new one.
///
/// Safe because `to` is another key: a nonce must never seal two messages
/// under one key, and every nonce moved to `to` was drawn at random for one
/// enrollment under `from`, so under `to` each still seals one secret (the
/// same secret with the same associated data gives the same bytes, when a
/// store restored from before a rotation is re-sealed with the key it
/// already moved to). Refused (an internal error) if `from` and `to` are
/// the same key.
pub fn reseal(
    from: &MasterKey,
    to: &MasterKey,
    sealed: &[u8],
    email: &str,
    created_at: i64,
) -> Result<Vec<u8>> {
    if from.fingerprint() == to.fingerprint() {
        return Err(Error::storage(
            "internal error: a re-seal under the same key",
        ));
    }
    let secret = open(from, sealed, email, created_at)?;
    let nonce: [u8; NONCE_LEN] = sealed
        .get(1..=NONCE_LEN)
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| Error::storage("internal error: an opened secret without a nonce"))?;
    seal_with_nonce(to, &nonce, &secret, email, created_at)
}

/// What identifies one sealing of a secret across re-seals under other
/// keys ([`reseal`]) and differs for every new enrollment: the random nonce
/// of a sealed secret; for anything else (a version 1 plaintext, damaged
/// bytes), the bytes themselves.
pub fn seal_identity(sealed: &[u8]) -> &[u8] {
    match sealed.split_first() {
        Some((&FORMAT_V1, rest)) if rest.len() >= NONCE_LEN + 16 => &rest[..NONCE_LEN],
        _ => sealed,
    }
}

fn seal_with_nonce(
    key: &MasterKey,
    nonce: &[u8; NONCE_LEN],
    secret: &Secret,
    email: &str,
    created_at: i64,
) -> Result<Vec<u8>> {
    let nonce = *nonce;
    let aad = associated_data(email, created_at);
    let ct = key
        .cipher()?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| Error::storage("cannot seal the secret"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Could `bytes` be a version 1 plaintext secret? Version 1 stored the raw
/// 20-byte secret; a sealed one is at least 41 bytes and starts with the
/// format byte. Anything outside 10..=64 bytes, or shaped like a sealed
/// secret, is not (so `seal-plaintext` never seals sealed bytes again).
pub fn is_plausible_plaintext(bytes: &[u8]) -> bool {
    let looks_sealed = bytes.len() >= 1 + NONCE_LEN + 16 && bytes.first() == Some(&FORMAT_V1);
    (10..=64).contains(&bytes.len()) && !looks_sealed
}

/// Open a sealed secret. Fails (exit 10) on a wrong key, on a secret that was
/// moved from another account, and on any change to the stored bytes.
pub fn open(key: &MasterKey, sealed: &[u8], email: &str, created_at: i64) -> Result<Secret> {
    let damaged = || {
        Error::storage(format!(
            "the stored secret of {email} does not open with this key: the key file is not the one this database was made with, or the row was altered; restore the right key file (or re-enroll the account)"
        ))
    };
    let (&version, rest) = sealed.split_first().ok_or_else(damaged)?;
    if version != FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
        return Err(damaged());
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| damaged())?;
    let aad = associated_data(email, created_at);
    let plain = key
        .cipher()?
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &aad })
        .map_err(|_| damaged())?;
    Ok(Secret::from_bytes(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reseal_keeps_the_identity_and_opens_only_with_the_new_key() {
        let (k1, k2) = (
            MasterKey::generate().expect("k"),
            MasterKey::generate().expect("k"),
        );
        let secret = Secret::generate().expect("secret");
        let sealed = seal(&k1, &secret, "a@example.com", 100).expect("seal");
        let moved = reseal(&k1, &k2, &sealed, "a@example.com", 100).expect("reseal");
        assert_ne!(moved, sealed);
        assert_eq!(seal_identity(&moved), seal_identity(&sealed));
        assert_eq!(seal_identity(&moved).len(), NONCE_LEN);
        let opened = open(&k2, &moved, "a@example.com", 100).expect("open");
        assert_eq!(opened.as_bytes(), secret.as_bytes());
        assert!(open(&k1, &moved, "a@example.com", 100).is_err());
        // Bound to the account still, and never under the same key.
        assert!(reseal(&k1, &k2, &sealed, "b@example.com", 100).is_err());
        assert!(reseal(&k1, &k1, &sealed, "a@example.com", 100).is_err());
        // A new enrollment of the same secret is another identity.
        let again = seal(&k1, &secret, "a@example.com", 100).expect("seal");
        assert_ne!(seal_identity(&again), seal_identity(&sealed));
        assert_eq!(
            seal_identity(b"plaintext-v1-secret!"),
            b"plaintext-v1-secret!"
        );
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_secret() {
        let key = MasterKey::generate().expect("key");
        let secret = Secret::generate().expect("secret");
        let sealed = seal(&key, &secret, "a@example.com", 100).expect("seal");
        assert_eq!(sealed.len(), 1 + 24 + 20 + 16);
        assert!(!sealed.windows(20).any(|w| w == secret.as_bytes()));
        let opened = open(&key, &sealed, "a@example.com", 100).expect("open");
        assert_eq!(opened, secret);
        // Two seals of one secret differ (random nonce).
        assert_ne!(
            sealed,
            seal(&key, &secret, "a@example.com", 100).expect("seal")
        );
    }

    #[test]
    fn wrong_key_other_account_or_tampering_fail_with_exit_10() {
        let key = MasterKey::generate().expect("key");
        let other = MasterKey::generate().expect("key");
        let secret = Secret::generate().expect("secret");
        let sealed = seal(&key, &secret, "a@example.com", 100).expect("seal");
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        for (k, s, email, at) in [
            (&other, &sealed, "a@example.com", 100),
            (&key, &sealed, "b@example.com", 100),
            (&key, &sealed, "a@example.com", 101),
            (&key, &flipped, "a@example.com", 100),
            (&key, &sealed[..20].to_vec(), "a@example.com", 100),
            (&key, &Vec::new(), "a@example.com", 100),
        ] {
            let err = open(k, s, email, at).expect_err("must not open");
            assert_eq!(err.exit_code(), 10);
            assert!(err.message().contains(email));
        }
    }

    #[test]
    fn key_debug_and_fingerprint_reveal_nothing_usable() {
        let key = MasterKey::from_bytes(&[7u8; 32]).expect("len");
        let shown = format!("{key:?}");
        assert!(!shown.contains("7, 7"));
        assert_eq!(key.fingerprint().len(), 16);
        assert_ne!(
            key.fingerprint(),
            MasterKey::from_bytes(&[8u8; 32])
                .expect("len")
                .fingerprint()
        );
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_none());
    }
}
