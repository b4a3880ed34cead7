//! A little markup for the hand-written parts of the man pages, turned into
//! roff by the `roff` crate (which escapes hyphens, backslashes and leading
//! dots): `` `text` `` is bold (what is typed: commands, options, values),
//! `*text*` is italic (paths, placeholders, other pages). Everything else is
//! roman.

use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

pub fn inlines(text: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['`', '*']) {
        let mark = &rest[at..at + 1];
        let Some(len) = rest[at + 1..].find(mark) else {
            break;
        };
        if at > 0 {
            out.push(roman(&rest[..at]));
        }
        let inner = &rest[at + 1..at + 1 + len];
        out.push(if mark == "`" {
            bold(inner)
        } else {
            italic(inner)
        });
        rest = &rest[at + 1 + len + 1..];
    }
    if !rest.is_empty() {
        out.push(roman(rest));
    }
    out
}

/// A new paragraph.
pub fn para(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.text(inlines(text));
}

/// A section heading.
pub fn section(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

/// A tagged paragraph: `tag` on its own line, `text` indented below it.
pub fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text(inlines(tag));
    roff.text(inlines(text));
}

/// Literal lines (a command, a file), indented, in a fixed-width font.
pub fn example(roff: &mut Roff, lines: &str) {
    roff.control("RS", ["4"]);
    roff.control("EX", []);
    for line in lines.lines() {
        roff.text([roman(line)]);
    }
    roff.control("EE", []);
    roff.control("RE", []);
}

/// `mb-2fa-verify(8)`, or a page of another section as given (`ps(1)`), as
/// a cross-reference: the name in bold, the section in roman.
pub fn reference(page: &str) -> Vec<Inline> {
    match page.split_once('(') {
        Some((name, section)) => vec![bold(name), roman(format!("({section}"))],
        None => vec![bold(page), roman("(8)")],
    }
}

/// A comma-separated list of references, as in SEE ALSO.
pub fn references<'a>(pages: impl IntoIterator<Item = &'a str>) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, page) in pages.into_iter().enumerate() {
        if i > 0 {
            out.push(roman(", "));
        }
        out.extend(reference(page));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_bold_and_italic() {
        assert_eq!(
            inlines("run `mb-2fa-list` on *FILE* now"),
            vec![
                roman("run "),
                bold("mb-2fa-list"),
                roman(" on "),
                italic("FILE"),
                roman(" now")
            ]
        );
        assert_eq!(inlines("a * b"), vec![roman("a * b")]);
        assert_eq!(inlines("`x`"), vec![bold("x")]);
    }

    #[test]
    fn references_name_their_section() {
        assert_eq!(
            references(["mb-2fa-list", "ps(1)"]),
            vec![
                bold("mb-2fa-list"),
                roman("(8)"),
                roman(", "),
                bold("ps"),
                roman("(1)")
            ]
        );
    }
}
