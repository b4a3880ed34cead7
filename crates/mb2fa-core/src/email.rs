//! Email addresses as account names. Trimmed and lower-cased so `Alice@X` and
//! `alice@x ` are one account; anything that could look like another address
//! on screen (control, invisible or bidirectional characters) is refused.

use std::fmt;

use crate::error::{Error, Result};

/// RFC 5321's limit on a forward path.
pub const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Characters that render as nothing or reorder text: a name containing one
/// can display as a different address than the one stored.
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email> {
        let bad = |why: &str| Error::usage(format!("invalid email: {why}"));
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(bad("it contains a control character"));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(bad("it contains a space"));
        }
        if trimmed.chars().any(is_invisible_or_bidi) {
            return Err(bad(
                "it contains an invisible or right-to-left formatting character",
            ));
        }
        let email = trimmed.to_lowercase();
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
                "o'hara+2fa@mail.example.co.uk",
                "o'hara+2fa@mail.example.co.uk",
            ),
            ("jürgen@bücher.example", "jürgen@bücher.example"),
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
            ("al\u{200B}ice@example.com", "invisible"),
            ("-alice@example.com", "starts with '-'"),
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
