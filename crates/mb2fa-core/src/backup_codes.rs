//! Backup (recovery) codes: 10 per account, 12 Crockford base32 characters
//! (60 bits) each, shown once as `XXXX-XXXX-XXXX`, stored only as argon2id.
//!
//! One attempt costs one argon2 evaluation, not ten: each stored code carries
//! a short *tag*, 16 bits of a SHA-256 of the code. The tag picks the one
//! candidate to check; it says little about the code (an attacker with the
//! database still faces 2^44 argon2 guesses per code). Tags are unique within
//! an account's set. When no tag matches, a decoy hash is checked anyway, so a
//! miss costs the same time as a hit.
//!
//! An enrollment imported from google-authenticator-libpam keeps that tool's
//! scratch codes (8 digits) as its backup codes ([`BackupCode::scratch`]):
//! the same tag, hash and single-use spend, only the canonical form is the 8
//! digits, which no 12-character code can equal.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::fill_random;

/// Codes issued per account.
pub const COUNT: usize = 10;
/// Characters per code.
pub const LEN: usize = 12;
/// Digits of a google-authenticator scratch code.
pub const SCRATCH_LEN: usize = 8;

/// Crockford's base32: no I, L, O or U, so nothing reads two ways.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// An argon2id hash (default parameters) of a random string nobody knows,
/// checked when an attempt's tag matches no stored code.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bWIyZmEtZGVjb3ktc2FsdA$CBFhwSfLnzI1pVHQsWg+Gln5BbMfhtVkZ2sy0Xrqd4g";

/// A backup code in canonical form: 12 upper-case Crockford characters, or
/// the 8 digits of an imported scratch code.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode(Zeroizing<String>);

impl BackupCode {
    /// Parse what a person typed: case-insensitive, spaces and hyphens ignored,
    /// and Crockford's look-alikes read as digits (O as 0, I and L as 1).
    /// `None` when it is not the shape of a backup code.
    pub fn parse(raw: &str) -> Option<BackupCode> {
        let mut out = Zeroizing::new(String::with_capacity(LEN));
        for c in raw.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            if out.len() == LEN {
                return None;
            }
            out.push(c);
        }
        (out.len() == LEN).then_some(BackupCode(out))
    }

    /// An imported google-authenticator scratch code: exactly 8 ASCII
    /// digits. `None` for anything else.
    pub fn scratch(digits: &str) -> Option<BackupCode> {
        (digits.len() == SCRATCH_LEN && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| BackupCode(Zeroizing::new(digits.to_string())))
    }

    /// Is this an imported scratch code (8 digits)?
    pub fn is_scratch(&self) -> bool {
        self.0.len() == SCRATCH_LEN
    }

    fn random() -> Result<BackupCode> {
        let mut bytes = Zeroizing::new([0u8; LEN]);
        fill_random(bytes.as_mut())?;
        // 256 is a multiple of 32, so taking 5 bits of each byte is unbiased.
        let code: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 0x1f)]))
            .collect();
        Ok(BackupCode(Zeroizing::new(code)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `XXXX-XXXX-XXXX`, the form shown to people (a scratch code as its 8
    /// digits).
    pub fn formatted(&self) -> Zeroizing<String> {
        let s = self.as_str();
        if self.is_scratch() {
            return Zeroizing::new(s.to_string());
        }
        Zeroizing::new(format!("{}-{}-{}", &s[0..4], &s[4..8], &s[8..12]))
    }

    /// The non-secret lookup tag (4 hex digits).
    pub fn tag(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mb-2fa backup code tag v1\0");
        h.update(self.0.as_bytes());
        let d = h.finalize();
        format!("{:02x}{:02x}", d[0], d[1])
    }

    /// The argon2id PHC string to store.
    pub fn hash(&self) -> Result<String> {
        Argon2::default()
            .hash_password(self.0.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::storage(format!("cannot hash a backup code: {e}")))
    }

    /// Check against a stored PHC string: one argon2 evaluation. A stored hash
    /// that does not parse counts as a mismatch and is reported as damage.
    pub fn matches(&self, phc: &str) -> Result<bool> {
        let parsed = PasswordHash::new(phc).map_err(|_| {
            Error::storage("a stored backup-code hash is unreadable: the database is damaged; make new codes with mb-2fa-backup-codes, or restore it from backup")
        })?;
        Ok(Argon2::default()
            .verify_password(self.0.as_bytes(), &parsed)
            .is_ok())
    }

    /// Spend the time of one check when no stored code could match.
    pub fn check_decoy(&self) {
        let _ = self.matches(DECOY_HASH);
    }
}

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCode([redacted])")
    }
}

/// A fresh set of codes with pairwise distinct tags, and their hashes, ready
/// to store: `(code, tag, hash)`.
pub struct NewSet {
    pub codes: Vec<BackupCode>,
    pub rows: Vec<(String, String)>,
}

pub fn generate_set() -> Result<NewSet> {
    let mut codes: Vec<BackupCode> = Vec::with_capacity(COUNT);
    let mut tags: Vec<String> = Vec::with_capacity(COUNT);
    while codes.len() < COUNT {
        let code = BackupCode::random()?;
        let tag = code.tag();
        if tags.contains(&tag) {
            continue;
        }
        tags.push(tag);
        codes.push(code);
    }
    let mut rows = Vec::with_capacity(COUNT);
    for (code, tag) in codes.iter().zip(tags) {
        rows.push((tag, code.hash()?));
    }
    Ok(NewSet { codes, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let canonical = "ABCD0123WXYZ";
        for input in [
            "ABCD0123WXYZ",
            "abcd0123wxyz",
            "ABCD-0123-WXYZ",
            "abcd-0123-wxyz",
            " ABCD 0123 WXYZ ",
            "AbCd-01 23-wXyZ",
            "ABCDO123WXYZ", // O read as 0
            "ABCD0I23WXYZ", // I read as 1
            "ABCD0l23WXYZ", // l read as 1
        ] {
            let c = BackupCode::parse(input).unwrap_or_else(|| panic!("{input:?}"));
            assert_eq!(c.as_str(), canonical, "{input:?}");
        }
        for bad in [
            "",
            "ABCD0123WXY",
            "ABCD0123WXYZ0",
            "ABCD0123WXYU",
            "ABCD_0123_WXYZ",
            "ÀBCD0123WXYZ",
            "ABCD\u{0}0123WXYZ",
        ] {
            assert!(BackupCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn scratch_codes_are_eight_digits_and_hash_like_backup_codes() {
        let c = BackupCode::scratch("84308363").expect("8 digits");
        assert!(c.is_scratch());
        assert_eq!(c.formatted().as_str(), "84308363");
        let h = c.hash().expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(c.matches(&h).expect("hash"));
        let other = BackupCode::scratch("84308364").expect("8 digits");
        assert!(!other.matches(&h).expect("hash"));
        assert_ne!(c.tag(), BackupCode::scratch("22707427").expect("8").tag());
        for bad in [
            "",
            "8430836",
            "843083633",
            "8430836a",
            " 84308363",
            "８４３０８３６３",
        ] {
            assert!(BackupCode::scratch(bad).is_none(), "{bad:?}");
        }
        // Never the shape of a 12-character code, and the other way round.
        assert!(BackupCode::parse("84308363").is_none());
        assert!(!BackupCode::parse("843083638430").expect("12").is_scratch());
    }

    #[test]
    fn formatted_and_debug() {
        let c = BackupCode::parse("abcd0123wxyz").expect("shape");
        assert_eq!(c.formatted().as_str(), "ABCD-0123-WXYZ");
        assert!(!format!("{c:?}").contains("ABCD"));
    }

    #[test]
    fn set_has_ten_distinct_codes_with_distinct_tags_that_verify() {
        let set = generate_set().expect("set");
        assert_eq!(set.codes.len(), COUNT);
        assert_eq!(set.rows.len(), COUNT);
        let mut tags: Vec<_> = set.rows.iter().map(|(t, _)| t.clone()).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), COUNT);
        for (code, (tag, hash)) in set.codes.iter().zip(&set.rows) {
            assert_eq!(code.as_str().len(), LEN);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(&code.tag(), tag);
            assert!(hash.starts_with("$argon2id$"));
            assert!(!hash.contains(code.as_str()));
            assert!(code.matches(hash).expect("hash"));
        }
        // A code does not verify against another code's hash.
        assert!(!set.codes[0].matches(&set.rows[1].1).expect("hash"));
    }

    #[test]
    fn wrong_code_does_not_match() {
        let c = BackupCode::parse("ABCD0123WXYZ").expect("shape");
        let h = c.hash().expect("hash");
        let wrong = BackupCode::parse("ABCD0123WXYY").expect("shape");
        assert!(!wrong.matches(&h).expect("hash"));
        assert_eq!(
            c.matches("not a phc string").map_err(|e| e.exit_code()),
            Err(10)
        );
    }

    #[test]
    fn decoy_uses_the_current_parameters() {
        // The decoy must cost what a real check costs.
        let real = BackupCode::parse("ABCD0123WXYZ")
            .expect("shape")
            .hash()
            .expect("hash");
        let params = |h: &str| h.split('$').nth(3).map(str::to_string);
        assert_eq!(params(DECOY_HASH), params(&real));
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
    }
}
