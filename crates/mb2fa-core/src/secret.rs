//! The TOTP shared secret: 20 random bytes from the OS CSPRNG (RFC 4226 §4
//! asks for at least 128 bits and recommends 160), shown as RFC 4648 base32.
//!
//! The bytes live in a zeroizing buffer and `Debug` never prints them, so a
//! stray `{:?}` or a panic message cannot leak a secret.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a new secret in bytes (160 bits).
pub const SECRET_LEN: usize = 20;

/// The shortest secret an import keeps: 10 bytes (80 bits), what the oldest
/// tools wrote (google-authenticator-libpam writes 16, RFC 4226 §4 asks for
/// at least 16). New enrollments always get [`SECRET_LEN`].
pub const MIN_IMPORTED_LEN: usize = 10;
/// The longest secret an import keeps (a SHA512 key of a full block).
pub const MAX_IMPORTED_LEN: usize = 64;

const ALPHABET: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

/// Fill `buf` from the operating system's CSPRNG. Failing is rare (a sandbox
/// without getrandom), but it must never panic or fall back to a weak source.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    SysRng.try_fill_bytes(buf).map_err(|e| {
        Error::storage(format!(
            "cannot read the operating system's random number generator: {e}"
        ))
    })
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A fresh random secret.
    pub fn generate() -> Result<Secret> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        fill_random(&mut bytes)?;
        Ok(Secret(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// A secret another tool made, kept at its length: `Err` with what is
    /// wrong (for the importer to put after a line number) unless it is
    /// [`MIN_IMPORTED_LEN`]..=[`MAX_IMPORTED_LEN`] bytes.
    pub fn imported(bytes: Zeroizing<Vec<u8>>) -> std::result::Result<Secret, String> {
        let n = bytes.len();
        if n < MIN_IMPORTED_LEN {
            return Err(format!(
                "the secret is {n} bytes; at least {MIN_IMPORTED_LEN} are needed"
            ));
        }
        if n > MAX_IMPORTED_LEN {
            return Err(format!(
                "the secret is {n} bytes; at most {MAX_IMPORTED_LEN} are kept"
            ));
        }
        Ok(Secret(bytes))
    }

    /// Decode RFC 4648 base32 as other tools write it: case-insensitive,
    /// `=` padding at the end tolerated, nothing else. `None` if it is not.
    pub fn decode_base32(text: &str) -> Option<Zeroizing<Vec<u8>>> {
        let body = text.trim_end_matches('=');
        if body.is_empty()
            || !body.bytes().all(|b| {
                b.is_ascii_uppercase() || b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)
            })
        {
            return None;
        }
        // 1, 3 and 6 trailing characters are lengths no encoder writes.
        if matches!(body.len() % 8, 1 | 3 | 6) {
            return None;
        }
        let upper = Zeroizing::new(body.to_ascii_uppercase());
        base32::decode(ALPHABET, &upper).map(Zeroizing::new)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding, as authenticator apps and `oathtool -b` take it.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(ALPHABET, &self.0))
    }

    /// Base32 in groups of four for typing by hand: `ABCD EFGH ...`.
    pub fn to_grouped_base32(&self) -> Zeroizing<String> {
        let plain = self.to_base32();
        let mut out = Zeroizing::new(String::with_capacity(plain.len() * 5 / 4));
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_160_bit_secrets_that_differ() {
        let a = Secret::generate().expect("rng");
        let b = Secret::generate().expect("rng");
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a, b);
        assert_eq!(a.to_base32().len(), 32);
    }

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 §10 test vector "foobar" -> "MZXW6YTBOI" (unpadded).
        let s = Secret::from_bytes(b"foobar".to_vec());
        assert_eq!(s.to_base32().as_str(), "MZXW6YTBOI");
        assert_eq!(s.to_grouped_base32().as_str(), "MZXW 6YTB OI");
    }

    #[test]
    fn imported_secrets_keep_their_length_within_bounds() {
        let ga = Secret::decode_base32("LGR6H2MEWKTWUXUH5IITIMO4NI").expect("base32");
        assert_eq!(ga.len(), 16);
        assert_eq!(Secret::imported(ga).expect("16 bytes").as_bytes().len(), 16);
        assert_eq!(
            Secret::decode_base32("mzxw6ytboi")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"foobar"[..])
        );
        assert!(Secret::decode_base32("MZXW6YTBOI======").is_some());
        for bad in ["", "MZXW6YTB0I", "MZXW 6YTB", "MZXW6YTBO", "M=ZX", "é"] {
            assert!(Secret::decode_base32(bad).is_none(), "{bad:?}");
        }
        assert!(Secret::imported(Zeroizing::new(vec![1; 9])).is_err());
        assert!(Secret::imported(Zeroizing::new(vec![1; 10])).is_ok());
        assert!(Secret::imported(Zeroizing::new(vec![1; 65])).is_err());
        // New enrollments are not affected: still 20 bytes.
        assert_eq!(
            Secret::generate().expect("rng").as_bytes().len(),
            SECRET_LEN
        );
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::from_bytes(b"12345678901234567890".to_vec());
        let shown = format!("{s:?}");
        assert!(!shown.contains("GEZDGNBV"), "{shown}");
        assert!(!shown.contains("49, 50"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
