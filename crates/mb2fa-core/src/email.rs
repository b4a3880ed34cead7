//! Email addresses as account names. Trimmed, lower-cased and NFC-normalised,
//! so `Alice@X`, `alice@x ` and the two spellings of `é` are one account;
//! anything that could make two names look alike on screen, or break a
//! suggested command line when pasted, is refused:
//!
//! - ASCII: only letters, digits, `.`, `_`, `+`, `-` and the one `@` (no
//!   quotes, `$`, `;`, backticks or spaces);
//! - other characters: UTS #39 identifier characters only
//!   (`GeneralSecurityProfile::identifier_allowed`), never a default-ignorable
//!   one (invisible, format, variation selector, tag) nor a bidi control;
//! - the part before `@` and each label of the domain: at most "highly
//!   restrictive" (UTS #39 restriction levels), so one script, or Latin with
//!   Han, Japanese or Korean; Latin mixed with Cyrillic or Greek is refused.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

use crate::error::{Error, Result};
use crate::text;

/// RFC 5321's limit on a forward path.
pub const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// ASCII punctuation an account name may hold besides the one `@`.
fn is_allowed_ascii(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '@')
}

/// Why `c` cannot be in an account name, if it cannot.
fn refuse_char(c: char) -> Option<String> {
    if c.is_ascii() {
        if is_allowed_ascii(c) {
            return None;
        }
        if text::is_control(c) {
            return Some(format!(
                "it contains a control character ({})",
                text::code_point(c)
            ));
        }
        return Some(format!(
            "it contains {}, which an account name cannot hold (ASCII letters, digits and . _ + - only)",
            text::code_point(c)
        ));
    }
    if text::is_control(c) || text::is_bidi_control(c) || text::is_default_ignorable(c) {
        return Some(format!(
            "it contains {} ({})",
            text::describe(c),
            text::code_point(c)
        ));
    }
    if c.is_whitespace() {
        return Some(format!("it contains a space ({})", text::code_point(c)));
    }
    if !c.identifier_allowed() {
        return Some(format!(
            "it contains {}, which is not a letter or digit allowed in account names (UTS #39)",
            text::code_point(c)
        ));
    }
    None
}

/// At most "highly restrictive": no look-alike mixing of scripts. The ASCII
/// punctuation allowed in names belongs to no script and is left out.
fn single_script_enough(part: &str) -> bool {
    let letters: String = part.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    letters.as_str().detect_restriction_level() <= RestrictionLevel::HighlyRestrictive
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email> {
        let bad = |why: &str| Error::usage(format!("invalid email: {why}"));
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(c) = trimmed.chars().find(|c| text::is_control(*c)) {
            return Err(bad(&format!(
                "it contains a control character ({})",
                text::code_point(c)
            )));
        }
        if let Some(c) = trimmed.chars().find(|c| c.is_whitespace()) {
            return Err(bad(&match c {
                ' ' => "it contains a space".to_string(),
                c if text::is_line_separator(c) => {
                    format!("it contains a line break ({})", text::code_point(c))
                }
                c => format!("it contains a space ({})", text::code_point(c)),
            }));
        }
        let email: String = trimmed.to_lowercase().nfc().collect();
        if let Some(why) = email.chars().find_map(refuse_char) {
            return Err(bad(&why));
        }
        if email.len() > MAX_LEN {
            return Err(bad(&format!("it is longer than {MAX_LEN} bytes")));
        }
        let mut parts = email.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("it must contain exactly one '@'"));
        };
        if local.is_empty() {
            return Err(bad("nothing before the '@'"));
        }
        if local.len() > MAX_LOCAL_LEN {
            return Err(bad(&format!(
                "the part before '@' is longer than {MAX_LOCAL_LEN} bytes"
            )));
        }
        if domain.is_empty() {
            return Err(bad("nothing after the '@'"));
        }
        if domain.split('.').any(str::is_empty) {
            return Err(bad(
                "the domain has an empty label (a leading, trailing or double dot)",
            ));
        }
        if email.starts_with('-') {
            return Err(bad("it starts with '-'"));
        }
        if !single_script_enough(local) {
            return Err(bad(
                "the part before '@' mixes scripts that look alike (such as Latin and Cyrillic)",
            ));
        }
        if !domain.split('.').all(single_script_enough) {
            return Err(bad(
                "a label of the domain mixes scripts that look alike (such as Latin and Cyrillic)",
            ));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes() {
        for (input, want) in [
            ("alice@example.com", "alice@example.com"),
            ("  Alice@Example.COM\n", "alice@example.com"),
            ("root@localhost", "root@localhost"),
            (
                "o.hara_x+2fa-1@mail.example.co.uk",
                "o.hara_x+2fa-1@mail.example.co.uk",
            ),
            ("jürgen@bücher.example", "jürgen@bücher.example"),
            // NFD twins are one account: e + U+0301 is é (U+00E9).
            ("jose\u{301}@example.com", "jos\u{e9}@example.com"),
            ("JOSE\u{301}@EXAMPLE.COM", "jos\u{e9}@example.com"),
            ("Jos\u{c9}@example.com", "jos\u{e9}@example.com"),
            // One script, or Han + Hiragana + Katakana, or Latin + Han.
            ("иван@пример.рф", "иван@пример.рф"),
            (
                "やまだ太郎カタカナ@example.jp",
                "やまだ太郎カタカナ@example.jp",
            ),
            ("wang漢字@example.cn", "wang漢字@example.cn"),
            ("ελένη@example.gr", "ελένη@example.gr"),
        ] {
            assert_eq!(
                Email::parse(input).map(|e| e.0),
                Ok(want.to_string()),
                "{input:?}"
            );
        }
        let long_ok = format!("{}@{}.com", "a".repeat(64), "d".repeat(185));
        assert_eq!(long_ok.len(), 254);
        assert!(Email::parse(&long_ok).is_ok());
    }

    #[test]
    fn rejects_with_a_reason() {
        let long = format!("{}@{}.com", "a".repeat(64), "d".repeat(186));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("alice", "exactly one '@'"),
            ("a@b@c", "exactly one '@'"),
            ("@example.com", "nothing before"),
            ("alice@", "nothing after"),
            ("alice@example..com", "empty label"),
            ("alice@.example.com", "empty label"),
            ("alice@example.com.", "empty label"),
            ("al ice@example.com", "space"),
            ("alice\u{0}@example.com", "control"),
            ("alice\u{1b}[31m@example.com", "control"),
            ("alice\u{202E}moc.elpmaxe@x", "right-to-left"),
            (
                "alice\u{200E}@x",
                "right-to-left formatting character (U+200E)",
            ),
            ("al\u{200B}ice@example.com", "invisible"),
            ("-alice@example.com", "starts with '-'"),
            ("o'hara@example.com", "U+0027"),
            ("x$(touch${IFS}/tmp/p)@e.com", "U+0024"),
            ("a`id`@example.com", "U+0060"),
            ("a;b@example.com", "U+003B"),
            ("\"q\"@example.com", "U+0022"),
            ("a%00@example.com", "U+0025"),
            ("a\u{34f}b@example.com", "invisible character (U+034F)"),
            ("a\u{3164}b@example.com", "invisible character (U+3164)"),
            ("a\u{115f}b@example.com", "invisible character (U+115F)"),
            ("a\u{ffa0}b@example.com", "invisible character (U+FFA0)"),
            ("a\u{fe0f}b@example.com", "invisible character (U+FE0F)"),
            ("a\u{e0041}b@example.com", "invisible character (U+E0041)"),
            ("a\u{2800}b@example.com", "U+2800"),
            ("a\u{2028}b@example.com", "U+2028"),
            ("a\u{85}b@example.com", "control character (U+0085)"),
            ("a\u{ff41}b@example.com", "U+FF41"),
            ("p\u{430}ypal@example.com", "mixes scripts"),
            ("alice@p\u{430}ypal.com", "a label of the domain mixes"),
            (&long, "longer than 254"),
        ];
        for (input, why) in cases {
            let err = Email::parse(input).expect_err(input);
            assert_eq!(err.exit_code(), 2, "{input:?}");
            assert!(
                err.message().starts_with("invalid email: "),
                "{}",
                err.message()
            );
            assert!(err.message().contains(why), "{input:?}: {}", err.message());
            // Never the character itself, only its code point.
            assert!(err.message().is_ascii(), "{input:?}: {}", err.message());
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(
            Email::parse(&long_local)
                .expect_err("local")
                .message()
                .contains("64")
        );
    }
}
