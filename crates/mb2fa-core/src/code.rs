//! What a person typed as a code: a TOTP code (6 digits, or 8 for an imported
//! enrollment) or a backup code, told apart by shape alone. Which digit count
//! is right depends on the enrollment, so that is decided by
//! `account::verify`, not here: for a 6-digit enrollment 8 digits are a
//! scratch code imported from google-authenticator (a backup code), for an
//! 8-digit enrollment a TOTP code. Error messages describe the shape, never
//! the input.

use std::fmt;

use zeroize::Zeroizing;

use crate::backup_codes::BackupCode;
use crate::error::{Error, Result};

/// Digits in a TOTP code of every enrollment this tool set makes.
pub const TOTP_DIGITS: usize = 6;

/// Digits in a TOTP code of an imported 8-digit enrollment, and in a
/// google-authenticator scratch code.
pub const LONG_DIGITS: usize = 8;

/// Longest input we look at; longer is refused before any other work.
const MAX_INPUT: usize = 64;

#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    /// 6 or 8 digits: a TOTP code, or (8 digits for a 6-digit enrollment) a
    /// scratch code; `account::verify` decides by the enrollment's digits.
    Totp(Zeroizing<String>),
    Backup(BackupCode),
}

impl Code {
    pub fn parse(raw: &str) -> Result<Code> {
        const EXPECTED: &str = "expected a 6- or 8-digit code (an inner space is fine) or a backup code XXXX-XXXX-XXXX";
        if raw.len() > MAX_INPUT {
            return Err(Error::usage(format!(
                "malformed code: too long; {EXPECTED}"
            )));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::usage(format!(
                "malformed code: it is empty; {EXPECTED}"
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Error::usage(format!(
                "malformed code: it contains a control character; {EXPECTED}"
            )));
        }
        let compact: Zeroizing<String> =
            Zeroizing::new(trimmed.chars().filter(|c| *c != ' ').collect());
        if compact.bytes().all(|b| b.is_ascii_digit()) {
            if compact.len() == TOTP_DIGITS || compact.len() == LONG_DIGITS {
                return Ok(Code::Totp(compact));
            }
            if compact.len() != crate::backup_codes::LEN {
                return Err(Error::usage(format!(
                    "malformed code: {} digits; {EXPECTED}",
                    compact.len()
                )));
            }
        }
        BackupCode::parse(trimmed)
            .map(Code::Backup)
            .ok_or_else(|| Error::usage(format!("malformed code: {EXPECTED}")))
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Totp(_) => f.write_str("Code::Totp([redacted])"),
            Code::Backup(_) => f.write_str("Code::Backup([redacted])"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp(s: &str) -> Option<String> {
        match Code::parse(s) {
            Ok(Code::Totp(c)) => Some(c.to_string()),
            _ => None,
        }
    }

    #[test]
    fn totp_shapes() {
        assert_eq!(totp("123456").as_deref(), Some("123456"));
        assert_eq!(totp("123 456").as_deref(), Some("123456"));
        assert_eq!(totp(" 012345\n").as_deref(), Some("012345"));
        assert_eq!(totp("1234 5678").as_deref(), Some("12345678"));
        assert_eq!(totp("01234567").as_deref(), Some("01234567"));
    }

    #[test]
    fn backup_shapes() {
        for s in [
            "abcd-0123-wxyz",
            "ABCD 0123 WXYZ",
            "abcd0123wxyz",
            "123456789012",
        ] {
            assert!(matches!(Code::parse(s), Ok(Code::Backup(_))), "{s}");
        }
    }

    #[test]
    fn malformed_codes_are_usage_errors_that_do_not_echo_input() {
        for s in [
            "",
            " ",
            "12345",
            "1234567",
            "123456789",
            "12345a",
            "1234-56",
            "12\u{0}3456",
            "123\t456",
            "ABCD-0123-WXYU",
            "ABCD-0123-WXY",
            "'; DROP TABLE accounts; --",
            "١٢٣٤٥٦",
        ] {
            let err = Code::parse(s).expect_err(s);
            assert_eq!(err.exit_code(), 2, "{s:?}");
            assert!(
                err.message().starts_with("malformed code"),
                "{}",
                err.message()
            );
            if s.trim().len() >= 4 {
                assert!(!err.message().contains(s.trim()), "{}", err.message());
            }
        }
        let huge = "1".repeat(10_000);
        assert!(
            Code::parse(&huge)
                .expect_err("huge")
                .message()
                .contains("too long")
        );
        assert!(
            Code::parse("1234567")
                .expect_err("7")
                .message()
                .contains("7 digits")
        );
    }
}
