//! `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=...&digits=...&period=...`
//! URIs (Google's Key Uri Format), one a line, as authenticator apps and
//! other 2FA servers export them. Blank lines and `#` comments are skipped.
//!
//! Kept: the secret at its length, `algorithm` (SHA1, SHA256, SHA512),
//! `digits` (6 or 8), `period` (1 to 300 s) and the issuer (the `issuer`
//! parameter, else the label's prefix). Without `--email`, the label's
//! account part must be an email address. `otpauth://hotp` is refused.
//! Parameters the format does not define for TOTP (`image`, `color`...) are
//! ignored; a known one given twice is refused.

use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

use crate::email::Email;
use crate::error::Result;
use crate::secret::Secret;
use crate::totp::{Algorithm, TotpParams};
use crate::uri;

use super::Entry;
use super::input::{at, lines};

/// Parse the URIs in `input`. With `email`, there must be exactly one.
pub fn parse(input: &[u8], name: &str, email: Option<&Email>) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in lines(input, name, false)? {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_one(line, n, name, email)?);
    }
    if email.is_some() && out.len() > 1 {
        return Err(crate::Error::usage(format!(
            "{name}: --email names one account, but there are {} URIs; leave --email out and let \
             each URI's label name its account; nothing was imported",
            out.len()
        )));
    }
    Ok(out)
}

fn parse_one(line: &str, n: usize, name: &str, email: Option<&Email>) -> Result<Entry> {
    let err = |what: &str| at(name, n, what);
    let scheme_end = line
        .find("://")
        .ok_or_else(|| err("not an otpauth:// URI"))?;
    if !line[..scheme_end].eq_ignore_ascii_case("otpauth") {
        return Err(err("not an otpauth:// URI"));
    }
    let rest = &line[scheme_end + 3..];
    let (kind, rest) = rest
        .split_once('/')
        .ok_or_else(|| err("the URI has no type and label (otpauth://totp/LABEL?...)"))?;
    if kind.eq_ignore_ascii_case("hotp") {
        return Err(err(
            "an otpauth://hotp URI (counter-based): HOTP is not supported, only time-based codes (totp)",
        ));
    }
    if !kind.eq_ignore_ascii_case("totp") {
        return Err(err("the URI's type is neither totp nor hotp"));
    }
    let (label, query) = rest
        .split_once('?')
        .ok_or_else(|| err("the URI has no parameters (secret=... is required)"))?;
    let label = percent_decode_str(label)
        .decode_utf8()
        .map_err(|_| err("the label is not valid UTF-8 once percent-decoded"))?;
    let (label_issuer, account) = match label.split_once(':') {
        Some((i, a)) => (Some(i.trim()), a.trim()),
        None => (None, label.trim()),
    };

    let mut secret: Option<Secret> = None;
    let mut issuer: Option<String> = None;
    let mut algorithm: Option<Algorithm> = None;
    let mut digits: Option<u8> = None;
    let mut period: Option<u32> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Zeroizing::new(
            percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| err("a parameter is not valid UTF-8 once percent-decoded"))?
                .into_owned(),
        );
        let twice = || err(&format!("the parameter {key} is given twice"));
        match key.to_ascii_lowercase().as_str() {
            "secret" => {
                if secret.is_some() {
                    return Err(twice());
                }
                let bytes = Secret::decode_base32(&value)
                    .ok_or_else(|| err("the secret is not base32 (RFC 4648: A-Z and 2-7)"))?;
                secret = Some(Secret::imported(bytes).map_err(|why| err(&why))?);
            }
            "issuer" => {
                if issuer.is_some() {
                    return Err(twice());
                }
                issuer = Some(uri::parse_issuer(&value).map_err(|e| err(e.message()))?);
            }
            "algorithm" => {
                if algorithm.is_some() {
                    return Err(twice());
                }
                algorithm = Some(
                    Algorithm::parse(&value.to_ascii_uppercase())
                        .ok_or_else(|| err("algorithm must be SHA1, SHA256 or SHA512"))?,
                );
            }
            "digits" => {
                if digits.is_some() {
                    return Err(twice());
                }
                digits = Some(match value.as_str() {
                    "6" => 6,
                    "8" => 8,
                    _ => return Err(err("digits must be 6 or 8")),
                });
            }
            "period" => {
                if period.is_some() {
                    return Err(twice());
                }
                period = Some(
                    parse_period(&value)
                        .ok_or_else(|| err("period must be a number of seconds from 1 to 300"))?,
                );
            }
            "counter" => {
                return Err(err(
                    "a counter parameter belongs to HOTP, which is not supported",
                ));
            }
            _ => {} // image, color and other app extras
        }
    }
    let secret = secret.ok_or_else(|| err("the URI has no secret parameter"))?;
    let issuer = match (issuer, label_issuer) {
        (Some(i), _) => Some(i),
        (None, Some(i)) if !i.is_empty() => {
            Some(uri::parse_issuer(i).map_err(|e| err(e.message()))?)
        }
        (None, _) => None,
    };
    let email = match email {
        Some(e) => e.clone(),
        None => Email::parse(account).map_err(|e| {
            err(&format!(
                "the label's account is not a usable email address ({}); give --email for a single URI",
                e.message()
            ))
        })?,
    };
    Ok(Entry {
        line: n,
        email,
        secret,
        params: TotpParams {
            algorithm: algorithm.unwrap_or(Algorithm::Sha1),
            digits: digits.unwrap_or(6),
            period: period.unwrap_or(30),
        },
        issuer,
        floor: None,
        scratch_codes: Vec::new(),
        notes: Vec::new(),
    })
}

fn parse_period(v: &str) -> Option<u32> {
    if v.is_empty() || v.len() > 3 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u32>().ok().filter(|p| (1..=300).contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        let e = parse(input.as_bytes(), "stdin", None).expect_err(input);
        assert_eq!(e.exit_code(), 2, "{}", e.message());
        assert!(!e.message().contains("JBSWY3DP"), "{}", e.message());
        e.message().to_string()
    }

    #[test]
    fn parameters_are_kept() {
        let input = "# exported\n\n\
            otpauth://totp/Example%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=Example%20Co&algorithm=SHA256&digits=8&period=60\n\
            OTPAUTH://TOTP/bob@example.com?secret=jbswy3dpehpk3pxp&image=https%3A%2F%2Fx\n\
            otpauth://totp/Old:carol@example.com?algorithm=sha512&secret=JBSWY3DPEHPK3PXP====\n";
        let got = parse(input.as_bytes(), "stdin", None).expect("parses");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].line, 3);
        assert_eq!(got[0].email.as_str(), "alice@example.com");
        assert_eq!(got[0].issuer.as_deref(), Some("Example Co"));
        assert_eq!(
            got[0].params,
            TotpParams {
                algorithm: Algorithm::Sha256,
                digits: 8,
                period: 60
            }
        );
        assert_eq!(got[0].secret.as_bytes().len(), 15);
        assert_eq!(got[1].email.as_str(), "bob@example.com");
        assert_eq!(got[1].issuer, None);
        assert_eq!(got[1].params, TotpParams::default());
        assert_eq!(got[1].secret.as_bytes().len(), 10);
        assert_eq!(got[2].issuer.as_deref(), Some("Old"));
        assert_eq!(got[2].params.algorithm, Algorithm::Sha512);
    }

    #[test]
    fn email_names_a_single_uri() {
        let dave = Email::parse("dave@example.com").expect("email");
        let one = "otpauth://totp/Phone?secret=JBSWY3DPEHPK3PXP\n";
        let got = parse(one.as_bytes(), "stdin", Some(&dave)).expect("one");
        assert_eq!(got[0].email, dave);
        let two = format!("{one}{one}");
        let e = parse(two.as_bytes(), "stdin", Some(&dave)).expect_err("two");
        assert!(
            e.message().contains("--email names one account"),
            "{}",
            e.message()
        );
        // Without --email, "Phone" is no email address.
        assert!(err(one).contains("line 1: the label's account is not a usable email address"));
    }

    #[test]
    fn bad_uris_name_the_line() {
        let ok = "otpauth://totp/a@example.com?secret=JBSWY3DPEHPK3PXP";
        assert!(
            err(&format!(
                "{ok}\notpauth://hotp/b@example.com?secret=JBSWY3DPEHPK3PXP&counter=1"
            ))
            .contains("line 2: an otpauth://hotp URI (counter-based): HOTP is not supported")
        );
        assert!(err("https://example.com/").contains("line 1: not an otpauth:// URI"));
        assert!(err("otpauth://totp/a@example.com").contains("line 1: the URI has no parameters"));
        assert!(err("otpauth://totp/a@example.com?issuer=X").contains("no secret parameter"));
        assert!(err("otpauth://totp/a@example.com?secret=JBSWY3DP0HPK3PXP").contains("not base32"));
        assert!(
            err("otpauth://totp/a@example.com?secret=JBSWY3DP").contains("the secret is 5 bytes")
        );
        assert!(err(&format!("{ok}&digits=7")).contains("digits must be 6 or 8"));
        assert!(err(&format!("{ok}&digits=six")).contains("digits must be 6 or 8"));
        assert!(err(&format!("{ok}&period=0")).contains("period must be"));
        assert!(err(&format!("{ok}&period=30s")).contains("period must be"));
        assert!(err(&format!("{ok}&algorithm=MD5")).contains("algorithm must be"));
        assert!(err(&format!("{ok}&digits=6&digits=8")).contains("digits is given twice"));
        assert!(err(&format!("{ok}&issuer=a%3Ab")).contains("invalid issuer"));
        assert!(err(&format!("{ok}&issuer=a%1Bb")).contains("U+001B"));
        assert!(
            err("otpauth://totp/a%FF@example.com?secret=JBSWY3DPEHPK3PXP")
                .contains("not valid UTF-8")
        );
        assert!(
            err("otpauth://totp/a@example.com?secret=JBSWY3DPEHPK3PXP\u{1b}[31m")
                .contains("line 1: a control character (U+001B)")
        );
    }
}
