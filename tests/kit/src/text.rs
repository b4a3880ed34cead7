//! What the tools print, taken apart: timestamps, backup codes, secrets,
//! otpauth URIs; and bytes that are not text.

use std::ffi::OsString;

use crate::totp::decode_secret;

/// Parse an RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.frac]Z`) into Unix
/// seconds; `None` if it is not one.
pub fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &s[19..s.len() - 1];
    if !(rest.is_empty()
        || (rest.len() > 1
            && rest.starts_with('.')
            && rest[1..].bytes().all(|c| c.is_ascii_digit())))
    {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Is `s` a backup code as shown to people: `XXXX-XXXX-XXXX` in Crockford
/// base32 (upper case, no I, L, O, U)?
pub fn is_backup_code(s: &str) -> bool {
    const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 3
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| CROCKFORD.contains(c)))
}

/// Is `s` an RFC 4648 base32 secret without padding, of 20 bytes (32 chars)?
pub fn is_secret(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        && decode_secret(s).len() == 20
}

/// Percent-decode (RFC 3986) a URI component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("percent-decoded UTF-8")
}

/// An otpauth URI taken apart: the decoded label and the decoded query.
#[derive(Debug)]
pub struct OtpauthUri {
    pub kind: String,
    pub label: String,
    pub params: Vec<(String, String)>,
}

impl OtpauthUri {
    pub fn parse(uri: &str) -> OtpauthUri {
        let rest = uri
            .strip_prefix("otpauth://")
            .unwrap_or_else(|| panic!("not an otpauth URI: {uri}"));
        let (path, query) = rest
            .split_once('?')
            .unwrap_or_else(|| panic!("no query in {uri}"));
        let (kind, label) = path
            .split_once('/')
            .unwrap_or_else(|| panic!("no label in {uri}"));
        let params = query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        OtpauthUri {
            kind: kind.to_string(),
            label: percent_decode(label),
            params,
        }
    }

    /// The one value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        let mut found = self.params.iter().filter(|(k, _)| k == key);
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "parameter {key} given twice");
        first
    }
}

/// The backup codes (`XXXX-XXXX-XXXX` tokens) in human output, in order.
pub fn backup_codes_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|t| is_backup_code(t))
        .map(str::to_string)
        .collect()
}

/// The otpauth URI in human output: the one token starting `otpauth://`.
pub fn uri_in(text: &str) -> String {
    let found: Vec<&str> = text
        .split_whitespace()
        .filter(|t| t.starts_with("otpauth://"))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one otpauth URI expected in:\n{text}"
    );
    found[0].to_string()
}

/// Build an argument that is not valid UTF-8: `prefix`, a 0xFF byte, `suffix`.
pub fn non_utf8(prefix: &str, suffix: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(bytes)
}

/// Does `haystack` contain `needle` (a non-empty byte string)?
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
