//! pam_oath's `users.oath` (liboath's users file): one user a line,
//! whitespace-separated fields
//!
//! ```text
//! # type      user   pin  secret (hex)                               [counter [last OTP] [time]]
//! HOTP/T30    alice  -    3132333435363738393031323334353637383930
//! HOTP/T60/8  bob@example.org  -  00112233445566778899aabbccddeeff
//! ```
//!
//! `HOTP/T<seconds>[/<digits>]` is TOTP with that period (and digits, 6 or
//! 8); plain `HOTP` and `HOTP/E` lines are counter-based and refused with
//! their line number. `#` comments and blank lines are skipped. The user
//! becomes `user@DOMAIN` (`--domain`), unless it is an email address
//! already. A user whose pin is anything but `-` (no pin) or `+` (checked
//! elsewhere) is refused: mb-2fa has no pin in front of the code, so
//! importing it would silently drop a factor. The counter, last-OTP and
//! time fields liboath writes back are checked for shape and not kept: they
//! do not say reliably which time step was used, so the replay floor starts
//! empty (the window's steps are then refused once used, as always).

use zeroize::Zeroizing;

use crate::email::Email;
use crate::error::Result;
use crate::secret::Secret;
use crate::totp::{Algorithm, TotpParams};

use super::Entry;
use super::input::{at, lines};

/// Parse `input` (named `name` in messages); `domain` completes user names
/// that are not email addresses.
pub fn parse(input: &[u8], name: &str, domain: Option<&str>) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in lines(input, name, true)? {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_one(line, n, name, domain)?);
    }
    Ok(out)
}

fn parse_one(line: &str, n: usize, name: &str, domain: Option<&str>) -> Result<Entry> {
    let err = |what: &str| at(name, n, what);
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let [kind, user, pin, hex, extra @ ..] = fields.as_slice() else {
        return Err(err(
            "a line needs at least 4 fields: type, user, pin (- for none) and the hex secret",
        ));
    };
    let params = parse_type(kind).map_err(|why| err(&why))?;
    match *pin {
        "-" | "+" => {}
        _ => {
            return Err(err(
                "the user has a pin: mb-2fa has no pin in front of the code (the password stays \
                 the first factor); replace the pin by - to import this user",
            ));
        }
    }
    let bytes = decode_hex(hex)
        .ok_or_else(|| err("the secret is not hexadecimal (an even number of 0-9 and a-f)"))?;
    let secret = Secret::imported(bytes).map_err(|why| err(&why))?;
    if extra.len() > 3 {
        return Err(err("more than 7 fields"));
    }
    if let Some(counter) = extra.first()
        && !counter.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err("the counter field (5th) is not a number"));
    }
    if let Some(last) = extra.get(1)
        && !last.bytes().all(|b| b.is_ascii_digit())
        && extra.len() == 3
    {
        return Err(err("the last-OTP field (6th) is not a number"));
    }
    let email = if user.contains('@') {
        Email::parse(user)
    } else {
        let Some(domain) = domain else {
            return Err(err(
                "the user is not an email address; give --domain DOMAIN to import it as user@DOMAIN",
            ));
        };
        Email::parse(&format!("{user}@{domain}"))
    }
    .map_err(|e| err(e.message()))?;
    Ok(Entry {
        line: n,
        email,
        secret,
        params,
        issuer: None,
        floor: None,
        scratch_codes: Vec::new(),
        notes: Vec::new(),
    })
}

/// `HOTP/T30`, `HOTP/T60/8`: TOTP with period and digits.
fn parse_type(kind: &str) -> std::result::Result<TotpParams, String> {
    let mut parts = kind.split('/');
    if !parts.next().is_some_and(|p| p.eq_ignore_ascii_case("HOTP")) {
        return Err("the type is not HOTP/T<seconds>[/<digits>]".into());
    }
    let Some(mode) = parts.next() else {
        return Err(
            "a counter-based (HOTP) user: HOTP is not supported, only time-based \
                    codes (HOTP/T30 and the like)"
                .into(),
        );
    };
    if mode.eq_ignore_ascii_case("E") {
        return Err(
            "a counter-based (HOTP/E) user: HOTP is not supported, only time-based \
                    codes (HOTP/T30 and the like)"
                .into(),
        );
    }
    let period = mode
        .strip_prefix(['T', 't'])
        .filter(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| (1..=300).contains(p))
        .ok_or("the type's period is not T<seconds> with 1 to 300 seconds")?;
    let digits = match parts.next() {
        None | Some("6") => 6,
        Some("8") => 8,
        Some(_) => return Err("the type's digits must be 6 or 8".into()),
    };
    if parts.next().is_some() {
        return Err("the type has too many parts (HOTP/T<seconds>/<digits>)".into());
    }
    Ok(TotpParams {
        algorithm: Algorithm::Sha1,
        digits,
        period,
    })
}

fn decode_hex(hex: &str) -> Option<Zeroizing<Vec<u8>>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    let mut out = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
    for pair in hex.as_bytes().chunks(2) {
        let hi = digit(pair[0])?;
        let lo = digit(pair[1])?;
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC: &str = "3132333435363738393031323334353637383930";

    fn err(input: &str, domain: Option<&str>) -> String {
        let e = parse(input.as_bytes(), "users.oath", domain).expect_err(input);
        assert_eq!(e.exit_code(), 2, "{}", e.message());
        assert!(!e.message().contains("31323334"), "{}", e.message());
        e.message().to_string()
    }

    #[test]
    fn totp_lines() {
        let input = format!(
            "# users\n\nHOTP/T30 alice - {RFC}\nHOTP/T60/8\tbob@example.org\t+\t{RFC} 0 755224 2024-01-01T00:00:00L\nhotp/t30/6 carol - 00112233445566778899\n"
        );
        let got = parse(input.as_bytes(), "users.oath", Some("example.com")).expect("parses");
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].line, got[0].email.as_str()),
            (3, "alice@example.com")
        );
        assert_eq!(got[0].params, TotpParams::default());
        assert_eq!(got[0].secret.as_bytes(), b"12345678901234567890");
        assert_eq!(got[1].email.as_str(), "bob@example.org");
        assert_eq!((got[1].params.period, got[1].params.digits), (60, 8));
        assert_eq!(got[2].secret.as_bytes().len(), 10);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let d = Some("example.com");
        assert!(
            err(&format!("HOTP/T30 a - {RFC}\nHOTP b - {RFC}\n"), d)
                .contains("users.oath line 2: a counter-based (HOTP) user: HOTP is not supported")
        );
        assert!(err(&format!("HOTP/E a - {RFC}"), d).contains("line 1: a counter-based (HOTP/E)"));
        assert!(
            err(&format!("HOTP/T30 a - {RFC}"), None)
                .contains("line 1: the user is not an email address; give --domain")
        );
        assert!(err(&format!("HOTP/T30 a 1234 {RFC}"), d).contains("line 1: the user has a pin"));
        assert!(!err(&format!("HOTP/T30 a 987654 {RFC}"), d).contains("987654"));
        assert!(err("HOTP/T30 a - 31323g", d).contains("not hexadecimal"));
        assert!(err("HOTP/T30 a - 313", d).contains("not hexadecimal"));
        assert!(err("HOTP/T30 a - 3132333435", d).contains("the secret is 5 bytes"));
        assert!(err("HOTP/T30 a -", d).contains("at least 4 fields"));
        assert!(err(&format!("HOTP/T30/7 a - {RFC}"), d).contains("digits must be 6 or 8"));
        assert!(err(&format!("HOTP/T30/x a - {RFC}"), d).contains("digits must be 6 or 8"));
        assert!(err(&format!("HOTP/Tx a - {RFC}"), d).contains("period"));
        assert!(err(&format!("HOTP/T0 a - {RFC}"), d).contains("period"));
        assert!(err(&format!("TOTP a - {RFC}"), d).contains("the type is not"));
        assert!(err(&format!("HOTP/T30 a - {RFC} x"), d).contains("counter field"));
        assert!(err(&format!("HOTP/T30 'a;b - {RFC}"), d).contains("line 1: invalid email"));
        assert!(err(&format!("HOTP/T30 a - {RFC}\u{7}"), d).contains("U+0007"));
    }
}
