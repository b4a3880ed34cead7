//! Reading what an import is given: a bounded amount of bytes (held in a
//! zeroizing buffer: it holds secrets), cut into numbered lines, each one
//! checked for size, UTF-8 and characters a terminal would act on before a
//! parser looks at it. Messages name the line and what is wrong, never the
//! line's text (it may hold a secret).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::text;

/// The largest input an import reads: far more than a users.oath of
/// thousands of users.
pub const MAX_INPUT: u64 = 4 << 20;

/// The longest line any of the formats has a use for.
pub const MAX_LINE: usize = 4096;

/// Read at most [`MAX_INPUT`] bytes of `from`, refusing more.
pub fn read_bounded(from: impl Read, name: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    from.take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::usage(format!("cannot read {name}: {e}")))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(Error::usage(format!(
            "{name}: larger than {} MiB; nothing was imported",
            MAX_INPUT >> 20
        )));
    }
    Ok(buf)
}

/// Read the file at `path`: opened without following a symlink at the path
/// (root reads a user's `~/.google_authenticator`, which that user could
/// have replaced by a link to a file of root's) and without blocking on a
/// FIFO, then required to be a regular file, and read bounded.
pub fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let name = text::escape_for_terminal(&path.to_string_lossy()).into_owned();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                Error::usage(format!(
                    "{name} is a symbolic link: give the file it points to; nothing was imported"
                ))
            } else {
                Error::usage(format!("cannot open {name}: {e}; nothing was imported"))
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::usage(format!("cannot read {name}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "{name} is not a regular file; nothing was imported"
        )));
    }
    read_bounded(file, &name)
}

/// The lines of `input`, numbered from 1, each checked: at most
/// [`MAX_LINE`] bytes, UTF-8, and no control, bidi, line-separator or
/// invisible character (a tab only where `tabs` allows it). A final `\r`
/// (a file saved on Windows) is dropped. `Err` names the first bad line.
pub fn lines<'a>(input: &'a [u8], name: &str, tabs: bool) -> Result<Vec<(usize, &'a str)>> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (line, after) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            return Err(at(
                name,
                number,
                format!("the line is longer than {MAX_LINE} bytes"),
            ));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| at(name, number, "the line is not valid UTF-8"))?;
        if let Some((column, c)) = line
            .chars()
            .enumerate()
            .find(|(_, c)| text::is_unsafe_for_terminal(*c) && !(tabs && *c == '\t'))
        {
            return Err(at(
                name,
                number,
                format!(
                    "{} ({}) at column {}",
                    text::describe(c),
                    text::code_point(c),
                    column + 1
                ),
            ));
        }
        out.push((number, line));
    }
    Ok(out)
}

/// A usage error about line `number` of `name`; nothing is imported.
pub fn at(name: &str, number: usize, what: impl AsRef<str>) -> Error {
    Error::usage(format!(
        "{name} line {number}: {}; nothing was imported",
        what.as_ref()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_checked() {
        let got = lines(b"a\r\nb\n\nc", "f", false).expect("fine");
        assert_eq!(got, vec![(1, "a"), (2, "b"), (3, ""), (4, "c")]);
        assert!(lines(b"", "f", false).expect("empty").is_empty());
        let e = lines(b"ok\nbad\x1b[2J\n", "f", false).expect_err("escape");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.message(),
            "f line 2: a control character (U+001B) at column 4; nothing was imported"
        );
        assert!(lines(b"a\tb", "f", true).is_ok());
        assert!(lines(b"a\tb", "f", false).is_err());
        let e = lines(b"x\n\xff\xfe\n", "f", false).expect_err("utf-8");
        assert!(e.message().contains("line 2: the line is not valid UTF-8"));
        let huge = vec![b'A'; MAX_LINE + 1];
        let e = lines(&huge, "f", false).expect_err("huge");
        assert!(
            e.message()
                .contains("line 1: the line is longer than 4096 bytes")
        );
        let e = lines("a\u{202e}b".as_bytes(), "f", false).expect_err("bidi");
        assert!(e.message().contains("right-to-left"), "{}", e.message());
    }

    #[test]
    fn files_are_opened_carefully() {
        let tmp = tempfile::tempdir().expect("tmp");
        let real = tmp.path().join("real");
        std::fs::write(&real, b"JBSWY3DPEHPK3PXP\n").expect("write");
        assert_eq!(
            read_file(&real).expect("read").as_slice(),
            b"JBSWY3DPEHPK3PXP\n"
        );
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let e = read_file(&link).expect_err("symlink");
        assert!(
            e.message().contains("is a symbolic link"),
            "{}",
            e.message()
        );
        let e = read_file(tmp.path()).expect_err("directory");
        assert_eq!(e.exit_code(), 2);
        let e = read_file(&tmp.path().join("missing")).expect_err("missing");
        assert!(e.message().starts_with("cannot open"), "{}", e.message());
    }

    #[test]
    fn input_is_bounded() {
        let big = vec![b'1'; (MAX_INPUT + 1) as usize];
        let e = read_bounded(&big[..], "stdin").expect_err("too big");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            read_bounded(&b"abc"[..], "stdin")
                .expect("small")
                .as_slice(),
            b"abc"
        );
    }
}
