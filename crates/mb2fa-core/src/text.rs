//! Characters that must not reach a terminal as they are, or that make two
//! strings look alike: the predicates shared by the input rules (`email`,
//! `uri::parse_issuer`, `policy::parse_reason`) and the output layer (`cli`),
//! which shows them as visible escapes such as `\u{1b}`.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::{Error, Result};

/// C0 controls (tab, newline and ESC among them), DEL and the C1 controls
/// (U+0080–U+009F, CSI U+009B among them).
pub fn is_control(c: char) -> bool {
    c.is_control()
}

/// The bidirectional formatting characters: they reorder what follows, so a
/// string can display as another one.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: new lines that
/// are not `\n`.
pub fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): what
/// renders as nothing, such as U+200B ZERO WIDTH SPACE, U+034F COMBINING
/// GRAPHEME JOINER, the Hangul fillers, variation selectors and tags.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A character that is shown as an escape in human output: a control (also
/// a newline inside a value), a bidi control, a line separator, or one that
/// renders as nothing.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    is_control(c) || is_bidi_control(c) || is_line_separator(c) || is_default_ignorable(c)
}

/// Is `s` an option or subcommand name a user could have meant (`--emial`,
/// `-q`, `exmpt`), safe to quote back? An option: one or two dashes, then a
/// lower-case letter, then letters, digits and dashes. A subcommand: lower-case
/// letters and dashes only. Never a code (digits) or a backup code (no leading
/// dash, and digits in it); anything else a user typed may be a code, a secret
/// or a terminal escape.
pub fn is_plain_option(s: &str) -> bool {
    if s.len() > 40 {
        return false;
    }
    let body = s.strip_prefix("--").or_else(|| s.strip_prefix('-'));
    match body {
        Some(body) => {
            body.starts_with(|c: char| c.is_ascii_lowercase())
                && body
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }
        None => {
            s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        }
    }
}

/// `U+001B`: how messages name a character without showing it.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `text` with every [`is_unsafe_for_terminal`] character replaced by a
/// visible escape (`\u{1b}`), so that a stored value can neither move the
/// cursor, set a title, reorder the line nor start a new one.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_for_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_for_terminal(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape_for_terminal`] for a block of lines: its newlines stay, every
/// other unsafe character (a newline inside a value cannot be told from one
/// between lines, so values go through [`escape_for_terminal`] first where
/// they can) is escaped.
pub fn escape_block(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe_for_terminal(c)) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<Cow<'_, str>> = text.split('\n').map(escape_for_terminal).collect();
    Cow::Owned(lines.join("\n"))
}

#[cfg(feature = "cli")]
/// A `serde_json` formatter that also escapes what serde_json leaves as it
/// is (it escapes only U+0000–U+001F, `"` and `\\`): DEL, the C1 controls,
/// bidi controls, U+2028/U+2029 and default-ignorables become `\uXXXX`
/// (surrogate pairs above U+FFFF). The JSON means the same; a terminal that
/// shows it raw (`cat`, a log viewer) is not driven by it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeJson;

#[cfg(feature = "cli")]
impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe_for_terminal(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{:04x}", u)?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(feature = "cli")]
/// `value` as one line of JSON, through [`SafeJson`].
pub fn to_safe_json(value: &(impl serde::Serialize + ?Sized)) -> serde_json::Result<String> {
    let mut out = Vec::new();
    write_safe_json(&mut out, value)?;
    // The formatter writes only what serde_json and `write!` produce: UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(feature = "cli")]
/// Write `value` as JSON through [`SafeJson`].
pub fn write_safe_json<W: std::io::Write>(
    writer: W,
    value: &(impl serde::Serialize + ?Sized),
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, SafeJson);
    value.serialize(&mut ser)
}

/// Refuse free text (an issuer, a reason) that holds a control, bidi, line
/// separator or invisible character; the message starts with `what` and
/// names the character by its code point.
pub fn check_one_line(what: &str, text: &str) -> Result<()> {
    let Some(c) = text.chars().find(|c| is_unsafe_for_terminal(*c)) else {
        return Ok(());
    };
    Err(Error::usage(format!(
        "{what}: it contains {} ({})",
        describe(c),
        code_point(c)
    )))
}

/// What kind of troublesome character `c` is, in words.
pub fn describe(c: char) -> &'static str {
    if c == '\n' || c == '\r' || is_line_separator(c) {
        "a line break"
    } else if is_control(c) {
        "a control character"
    } else if is_bidi_control(c) {
        "a right-to-left formatting character"
    } else if is_default_ignorable(c) {
        "an invisible character"
    } else {
        "a character that is not allowed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape_for_terminal("plain é 漢字"), "plain é 漢字");
        assert!(matches!(escape_for_terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_for_terminal("a\u{1b}]0;x\u{7}b\nc\u{9b}d\u{202e}e\u{2028}f\u{200b}g\u{7f}"),
            "a\\u{1b}]0;x\\u{7}b\\u{a}c\\u{9b}d\\u{202e}e\\u{2028}f\\u{200b}g\\u{7f}"
        );
        assert_eq!(escape_for_terminal("\u{e0041}"), "\\u{e0041}");
    }

    #[cfg(feature = "cli")]
    #[test]
    fn json_escapes_what_serde_json_leaves() {
        let v = serde_json::json!({"k": "a\u{7f}b\u{9b}c\u{202e}d\u{2028}e\u{e0041}f\u{1b}g\"h"});
        let text = to_safe_json(&v).expect("json");
        assert_eq!(
            text,
            r#"{"k":"a\u007fb\u009bc\u202ed\u2028e\udb40\udc41f\u001bg\"h"}"#
        );
        assert!(!text.chars().any(is_unsafe_for_terminal), "{text:?}");
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, v, "the same value");
        assert_eq!(escape_block("a\u{1b}b\nc"), "a\\u{1b}b\nc");
    }

    #[test]
    fn the_classes() {
        for c in ['\0', '\t', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}'] {
            assert!(is_control(c) && is_unsafe_for_terminal(c), "{c:?}");
        }
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ] {
            assert!(is_bidi_control(c) && is_default_ignorable(c), "{c:?}");
        }
        for c in [
            '\u{34f}',
            '\u{200b}',
            '\u{3164}',
            '\u{115f}',
            '\u{ffa0}',
            '\u{fe0f}',
            '\u{e0001}',
            '\u{e007f}',
            '\u{feff}',
            '\u{ad}',
        ] {
            assert!(is_default_ignorable(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '\u{2800}', '漢', '-'] {
            assert!(!is_unsafe_for_terminal(c), "{c:?}");
        }
        assert!(is_line_separator('\u{2028}') && is_line_separator('\u{2029}'));
        assert_eq!(code_point('\u{1b}'), "U+001B");
        assert_eq!(code_point('\u{e0041}'), "U+E0041");
    }

    #[test]
    fn one_line_check_names_the_code_point_not_the_character() {
        assert!(check_one_line("invalid issuer", "Mailborder - example.com").is_ok());
        let e = check_one_line("invalid issuer", "a\u{202e}b").expect_err("bidi");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.message(),
            "invalid issuer: it contains a right-to-left formatting character (U+202E)"
        );
        let e = check_one_line("invalid reason", "a\u{2029}b").expect_err("separator");
        assert!(
            e.message().contains("line break (U+2029)"),
            "{}",
            e.message()
        );
    }
}
