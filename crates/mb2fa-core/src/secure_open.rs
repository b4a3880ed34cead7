//! Files the tools trust (the key, the database and its `-wal`/`-shm`) are
//! opened first and checked after, on the open descriptor, as ssh and
//! sudo-rs do: never "check a path, then open it".
//!
//! - The file itself: opened with `O_NOFOLLOW` (a symlink planted at the path
//!   is refused, never followed), then `fstat`: a regular file, owned by the
//!   effective user, and neither readable nor writable by group or others.
//!   A readable database would let any local user hold SQLite's lock bytes
//!   and block every login; a readable key gives away every secret.
//! - Its directory: owned by root or the effective user and not writable by
//!   group or others, so nobody else can plant, swap or remove a name in it
//!   between our checks and SQLite's own open of the same path.

use std::fs::{File, Metadata, OpenOptions};
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use crate::error::{Error, Result};

/// The effective user id the tool runs as.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a file is, for messages: "key file", "database".
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub what: &'static str,
    /// The mode to tell the admin to set, e.g. `0400`.
    pub mode: &'static str,
}

pub const KEY: Kind = Kind {
    what: "key file",
    mode: "0400",
};
pub const CONFIG: Kind = Kind {
    what: "config file",
    mode: "0644",
};
pub const PASSWORD: Kind = Kind {
    what: "password file",
    mode: "0400",
};
pub const DATABASE: Kind = Kind {
    what: "database",
    mode: "0600",
};

/// Check the directory that holds a trusted file: a directory, owned by root
/// or the effective user, not writable by group or others.
pub fn check_dir(dir: &Path, kind: Kind) -> Result<()> {
    let d = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| {
        Error::storage(format!(
            "cannot inspect directory {d} of the {}: {e}",
            kind.what
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::storage(format!(
            "{d}, which should hold the {}, is not a directory",
            kind.what
        )));
    }
    let me = euid();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(Error::storage(format!(
            "directory {d} of the {} is owned by uid {}, not by root or uid {me}: refusing to trust it; move the file to a directory of your own (0700)",
            kind.what,
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(Error::storage(format!(
            "directory {d} of the {} is writable by group or others (mode {:04o}): anyone could plant a file there; run: chmod go-w {d}",
            kind.what, mode
        )));
    }
    Ok(())
}

/// Open `path` read-only without following a symlink and check it as a
/// trusted file of `kind`. `Ok(None)` when it does not exist.
pub fn open(path: &Path, kind: Kind) -> Result<Option<(File, Metadata)>> {
    let p = path.display();
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == IoErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Error::storage(format!(
                "{} {p} is a symbolic link: refusing to follow it; put the real file there (mode {})",
                kind.what, kind.mode
            )));
        }
        Err(e) => {
            return Err(Error::storage(format!(
                "cannot open {} {p}: {e}; run with sudo, or check the path",
                kind.what
            )));
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::storage(format!("cannot inspect {} {p}: {e}", kind.what)))?;
    check_meta(path, &meta, kind)?;
    Ok(Some((file, meta)))
}

/// The checks of [`open`] on a file's metadata (from `fstat`).
pub fn check_meta(path: &Path, meta: &Metadata, kind: Kind) -> Result<()> {
    let p = path.display();
    if !meta.file_type().is_file() {
        return Err(Error::storage(format!(
            "{} {p} is not a regular file: point the option at the real {}",
            kind.what, kind.what
        )));
    }
    let me = euid();
    if meta.uid() != me {
        return Err(Error::storage(format!(
            "{} {p} is owned by uid {}, not by uid {me} who runs this tool: refusing to use a file someone else may have planted; check where it came from, then: chown {me} {p}",
            kind.what,
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        let fix = if kind.what == DATABASE.what {
            format!("chmod 0600 {p} {p}-wal {p}-shm (those that exist)")
        } else {
            format!("chmod {} {p}", kind.mode)
        };
        return Err(Error::storage(format!(
            "{} {p} is accessible by group or others (mode {mode:04o}): refusing to use it (a readable database lets any local user block logins, a readable key gives away every secret); run: {fix}",
            kind.what
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn refuses_symlinks_loose_modes_and_loose_directories() {
        let tmp = tempfile::tempdir().expect("tmp");
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").expect("write");
        chmod(&f, 0o600);
        assert!(open(&f, DATABASE).expect("ok").is_some());
        assert!(
            open(&tmp.path().join("none"), DATABASE)
                .expect("ok")
                .is_none()
        );
        for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
            chmod(&f, mode);
            let err = open(&f, DATABASE).expect_err("loose");
            assert_eq!(err.exit_code(), 10);
            assert!(err.message().contains("chmod 0600"), "{}", err.message());
        }
        chmod(&f, 0o600);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        let err = open(&link, DATABASE).expect_err("symlink");
        assert!(err.message().contains("symbolic link"), "{}", err.message());
        let err = open(tmp.path(), KEY).expect_err("dir");
        assert!(
            err.message().contains("not a regular file"),
            "{}",
            err.message()
        );

        check_dir(tmp.path(), DATABASE).expect("0700 dir");
        for mode in [0o770, 0o707, 0o777, 0o1777] {
            chmod(tmp.path(), mode);
            let err = check_dir(tmp.path(), DATABASE).expect_err("loose dir");
            assert!(err.message().contains("chmod go-w"), "{}", err.message());
        }
        chmod(tmp.path(), 0o700);
    }
}
