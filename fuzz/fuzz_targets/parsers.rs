//! Fuzz the parsers of what people type: `Code::parse` (TOTP and backup
//! codes), `BackupCode::parse`, `Email::parse`, and the issuer, role, reason
//! and `--since` parsers. Any input: no panic; a refusal is a usage error
//! (exit 2) on one line that never echoes a code; an accepted value is in
//! normal form (it parses back to itself).
//!
//! cargo +nightly fuzz run parsers -- -max_total_time=60

#![no_main]

use libfuzzer_sys::fuzz_target;
use mb2fa_core::backup_codes::BackupCode;
use mb2fa_core::clock::parse_since;
use mb2fa_core::code::Code;
use mb2fa_core::email::Email;
use mb2fa_core::policy::{parse_reason, parse_role};
use mb2fa_core::uri::parse_issuer;
use mb2fa_core::{Error, ErrorKind};

fn usage(e: &Error) {
    assert_eq!(e.kind(), ErrorKind::Usage, "{e:?}");
    assert_eq!(e.exit_code(), 2);
    assert!(!e.message().contains('\n'), "{e:?}");
}

/// A refusal of a code says what shape was expected, and nothing of the
/// input but its digit count: one of a few fixed messages.
fn fixed_code_message(message: &str) -> bool {
    const EXPECTED: &str =
        "expected a 6-digit code (an inner space is fine) or a backup code XXXX-XXXX-XXXX";
    let Some(rest) = message.strip_prefix("malformed code: ") else {
        return false;
    };
    let Some(why) = rest.strip_suffix(EXPECTED) else {
        return false;
    };
    let why = why.strip_suffix("; ").unwrap_or(why);
    matches!(
        why,
        "" | "too long" | "it is empty" | "it contains a control character"
    ) || why
        .strip_suffix(" digits")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };

    match Code::parse(raw) {
        Err(e) => {
            usage(&e);
            assert!(fixed_code_message(e.message()), "{e:?}");
        }
        Ok(Code::Totp(d)) => {
            assert!(d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()));
            assert!(matches!(Code::parse(&d), Ok(Code::Totp(again)) if *again == *d));
        }
        Ok(Code::Backup(b)) => {
            assert_eq!(BackupCode::parse(&b.formatted()), Some(b.clone()));
            assert_eq!(BackupCode::parse(b.as_str()), Some(b));
        }
    }
    if let Some(b) = BackupCode::parse(raw) {
        assert_eq!(b.as_str().len(), 12);
        assert_eq!(BackupCode::parse(&b.as_str().to_lowercase()), Some(b));
    }

    match Email::parse(raw) {
        Err(e) => usage(&e),
        Ok(e) => {
            // Lower-cased (and NFC-normalised, which changes no ASCII).
            if raw.is_ascii() {
                assert_eq!(e.as_str(), raw.trim().to_lowercase());
            }
            assert!(!e.as_str().chars().any(mb2fa_core::text::is_unsafe_for_terminal));
            assert_eq!(Email::parse(e.as_str()).ok(), Some(e));
        }
    }

    for (parsed, again) in [
        (
            parse_issuer(raw),
            parse_issuer as fn(&str) -> mb2fa_core::Result<String>,
        ),
        (parse_role(raw), parse_role),
        (parse_reason(raw), parse_reason),
    ] {
        match parsed {
            Err(e) => usage(&e),
            Ok(v) => assert_eq!(again(&v).as_ref(), Ok(&v)),
        }
    }

    if let Err(e) = parse_since(raw, 1_800_000_000) {
        usage(&e);
    }
});
