//! The `otpauth://` URI of Google's Key Uri Format, which every mainstream
//! authenticator app reads from the QR code.
//!
//! The issuer goes in twice, as the label prefix and as `issuer=`: older apps
//! read only the prefix, newer ones prefer the parameter, and both must agree.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::totp::TotpParams;

/// The issuer shown in authenticator apps unless an admin picks another.
pub const DEFAULT_ISSUER: &str = "Mailborder";

/// Longest issuer we accept; apps truncate long names and QR codes grow.
pub const MAX_ISSUER_LEN: usize = 64;

// Everything but RFC 3986 unreserved characters is encoded. '@' is left as is:
// it is legal in a path and a query, and apps show it either way.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Check an issuer name: the Key Uri Format forbids ':' in it (it separates
/// the issuer from the account in the label).
pub fn parse_issuer(raw: &str) -> Result<String> {
    let issuer = raw.trim();
    if issuer.is_empty() {
        return Err(Error::usage("invalid issuer: it is empty"));
    }
    if issuer.chars().count() > MAX_ISSUER_LEN {
        return Err(Error::usage(format!(
            "invalid issuer: longer than {MAX_ISSUER_LEN} characters"
        )));
    }
    if issuer.contains(':') {
        return Err(Error::usage(
            "invalid issuer: it must not contain ':' (authenticator apps split the label there)",
        ));
    }
    // Controls, bidi controls, line separators and invisible characters.
    crate::text::check_one_line("invalid issuer", issuer)?;
    Ok(issuer.to_string())
}

/// `otpauth://totp/ISSUER:EMAIL?secret=...&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`
///
/// The result contains the secret: treat it like the secret.
pub fn otpauth_uri(
    issuer: &str,
    email: &str,
    secret: &Secret,
    params: &TotpParams,
) -> zeroize::Zeroizing<String> {
    let issuer_enc = utf8_percent_encode(issuer, COMPONENT);
    let email_enc = utf8_percent_encode(email, COMPONENT);
    zeroize::Zeroizing::new(format!(
        "otpauth://totp/{issuer_enc}:{email_enc}?secret={secret}&issuer={issuer_enc}&algorithm={alg}&digits={digits}&period={period}",
        secret = secret.to_base32().as_str(),
        alg = params.algorithm.as_str(),
        digits = params.digits,
        period = params.period,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_key_uri_format() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let uri = otpauth_uri(
            "Mailborder - example.com",
            "alice@example.com",
            &secret,
            &TotpParams::default(),
        );
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Mailborder%20-%20example.com:alice@example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Mailborder%20-%20example.com\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn encodes_reserved_characters() {
        let secret = Secret::from_bytes(vec![0; 20]);
        let uri = otpauth_uri(
            "A&B",
            "o'hara+tag@example.com",
            &secret,
            &TotpParams::default(),
        );
        assert!(uri.starts_with("otpauth://totp/A%26B:o%27hara%2Btag@example.com?"));
        assert!(uri.contains("&issuer=A%26B&"));
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(parse_issuer("  Mailborder ").as_deref(), Ok("Mailborder"));
        assert_eq!(
            parse_issuer("Mailborder – Ünïcode 漢字").as_deref(),
            Ok("Mailborder – Ünïcode 漢字")
        );
        for bad in [
            "",
            "   ",
            "a:b",
            "bad\u{7}bell",
            &"x".repeat(65),
            "a\u{1b}[2Jb",
            "a\u{9b}b",
            "Mail\u{202e}border",
            "Mail\u{2066}border",
            "two\u{2028}lines",
            "two\u{2029}lines",
            "in\u{200b}visible",
            "tag\u{e0041}",
        ] {
            let err = parse_issuer(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.message().starts_with("invalid issuer"));
        }
    }
}
