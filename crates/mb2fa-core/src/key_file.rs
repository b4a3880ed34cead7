//! The key file that seals TOTP secrets: 32 random bytes, default
//! `/etc/mailborder/2fa.key`, directory 0700, file 0400.
//!
//! Kept apart from the database (`/var/lib/mailborder`) so that a copy of the
//! database, as backups make, gives away no secret. Like ssh with a private
//! key, a key file that group or others may read or write, that someone else
//! owns, that is a symlink, or that sits in a directory others may write, is
//! refused (see `secure_open`).

use std::fs::{self, DirBuilder, File};
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::{KEY_LEN, MasterKey};
use crate::error::{Error, Result};
use crate::secure_open;

pub const DEFAULT_KEY_PATH: &str = "/etc/mailborder/2fa.key";

/// Read the key. `Ok(None)` when the file does not exist; every other
/// problem (a symlink, another owner, a loose mode, a directory others may
/// write, a wrong size, unreadable) is exit 10 naming the cure. The file is
/// opened first (`O_NOFOLLOW`) and checked on the open descriptor.
pub fn load(path: &Path) -> Result<Option<MasterKey>> {
    let p = path.display();
    let Some((file, _)) = secure_open::open(path, secure_open::KEY)? else {
        return Ok(None);
    };
    secure_open::check_dir(&secure_open::parent_dir(path), secure_open::KEY)?;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    file.take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::storage(format!("cannot read key file {p}: {e}; run with sudo")))?;
    MasterKey::from_bytes(&bytes).map(Some).ok_or_else(|| {
        Error::storage(format!(
            "key file {p} holds {} bytes, not {KEY_LEN}: it is damaged or not an mb-2fa key; restore it from backup",
            if bytes.len() > KEY_LEN { format!("more than {KEY_LEN}") } else { bytes.len().to_string() }
        ))
    })
}

/// Create a new key file atomically: written in full to a new temporary file
/// (mode 0400) in the same, checked directory, then linked into place without
/// replacing anything (`persist_noclobber`). If another process got there
/// first, its key is used (after the same checks as [`load`]).
/// Refuse early (before a database is created beside it) a key that could
/// not be created safely: a directory that exists but is not trusted.
pub fn check_can_create(path: &Path) -> Result<()> {
    let dir = secure_open::parent_dir(path);
    if dir.exists() {
        secure_open::check_dir(&dir, secure_open::KEY)?;
    }
    Ok(())
}

pub fn create(path: &Path) -> Result<MasterKey> {
    let p = path.display();
    let dir = secure_open::parent_dir(path);
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                Error::storage(format!(
                    "cannot create directory {} for the key file: {e}; run with sudo or pass --key-file",
                    dir.display()
                ))
            })?;
    }
    secure_open::check_dir(&dir, secure_open::KEY)?;
    let cannot = |e: std::io::Error| {
        Error::storage(format!(
            "cannot create key file {p}: {e}; run with sudo or pass --key-file"
        ))
    };
    let key = MasterKey::generate()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(TEMP_RANDOM_LEN)
        .permissions(fs::Permissions::from_mode(0o400))
        .tempfile_in(&dir)
        .map_err(cannot)?;
    tmp.write_all(key.as_bytes()).map_err(cannot)?;
    tmp.as_file().sync_all().map_err(cannot)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(key)
        }
        Err(e) if e.error.kind() == IoErrorKind::AlreadyExists => load(path)?.ok_or_else(|| {
            Error::storage(format!(
                "key file {p} vanished while being created; try again"
            ))
        }),
        Err(e) => Err(cannot(e.error)),
    }
}

/// The files of a key rotation beside the key (`mb-2fa-store rekey`):
/// `2fa.key.new` (the next key, written before the database is re-sealed)
/// and `2fa.key.old` (the previous key, kept until `rekey --finish`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

pub const NEW_SUFFIX: &str = ".new";

/// The name of the temporary file [`create`] writes a key into before it
/// gets its name: this prefix and [`TEMP_RANDOM_LEN`] random letters and
/// digits, mode 0400, in the key file's directory. A process killed while
/// writing it leaves it behind.
pub const TEMP_PREFIX: &str = ".2fa.key.new-";
pub const TEMP_RANDOM_LEN: usize = 6;

/// A temporary key file younger than this may be another process's, still
/// being written (that takes milliseconds): it is left alone.
pub const TEMP_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether `name` is one [`create`] gives its temporary files.
fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
        return false;
    };
    rest.len() == TEMP_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Remove the temporary files that [`create`] runs killed mid-write left
/// beside the key file `key` (the files of `mb-2fa-store rekey` and of the
/// first enrollment). Only what such a run leaves is removed: a name of
/// [`TEMP_PREFIX`] and [`TEMP_RANDOM_LEN`] random characters, a regular
/// file (never a symlink, which is not followed either), owned by this
/// user, mode 0400, at most a key's size, and older than
/// [`TEMP_STALE_AFTER`] (so another process's file being written stays), in
/// a directory the key checks trust. Anything else is left as it is. The
/// paths removed.
pub fn remove_stale_temporaries(key: &Path) -> Result<Vec<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let dir = secure_open::parent_dir(key);
    secure_open::check_dir(&dir, secure_open::KEY)?;
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == IoErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::storage(format!(
                "cannot list the key file's directory {}: {e}; run with sudo",
                dir.display()
            )));
        }
    };
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // lstat: a symlink is itself, never what it points at.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= TEMP_STALE_AFTER);
        if !meta.file_type().is_file()
            || meta.uid() != secure_open::euid()
            || meta.mode() & 0o7777 != 0o400
            || meta.len() > KEY_LEN as u64
            || !stale
        {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == IoErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::storage(format!(
                    "cannot remove the leftover temporary key file {}: {e}",
                    path.display()
                )));
            }
        }
    }
    if !removed.is_empty() {
        sync_dir(&dir)?;
    }
    Ok(removed)
}
pub const OLD_SUFFIX: &str = ".old";

/// fsync a directory, so a name made, replaced or removed in it survives a
/// power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::storage(format!("cannot sync directory {}: {e}", dir.display())))
}

/// Give the key file `from` a second name `to` (a hard link: the same
/// bytes, owner and mode 0400), never replacing anything. False if `to`
/// exists already (the caller judges what it holds).
pub fn link_noclobber(from: &Path, to: &Path) -> Result<bool> {
    match fs::hard_link(from, to) {
        Ok(()) => {
            sync_dir(&secure_open::parent_dir(to))?;
            Ok(true)
        }
        Err(e) if e.kind() == IoErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::storage(format!(
            "cannot keep the key file {} as {}: {e}; nothing was changed there",
            from.display(),
            to.display()
        ))),
    }
}

/// Move the key file `from` over `to` in one step (rename) and sync the
/// directory: `to` is the old file or the new one, never neither.
pub fn replace(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        Error::storage(format!(
            "cannot move key file {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })?;
    sync_dir(&secure_open::parent_dir(to))
}

/// Remove a key file and sync the directory. False if it was not there.
pub fn remove(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(&secure_open::parent_dir(path))?;
            Ok(true)
        }
        Err(e) if e.kind() == IoErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::storage(format!(
            "cannot remove key file {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_then_load_with_modes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("etc/mailborder/2fa.key");
        assert!(load(&path).expect("missing is fine").is_none());
        let k = create(&path).expect("create");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o400);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let again = load(&path).expect("load").expect("present");
        assert_eq!(again.as_bytes(), k.as_bytes());
        // A second create keeps the first key.
        let second = create(&path).expect("create");
        assert_eq!(second.as_bytes(), k.as_bytes());
        let leftovers = fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    /// Set a file's modification time `secs` seconds back.
    fn age(path: &Path, secs: u64) {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        File::open(path)
            .expect("open")
            .set_modified(t)
            .expect("set mtime");
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let tmp = tempfile::tempdir().expect("tmp");
        let key = tmp.path().join("2fa.key");
        create(&key).expect("create");
        let dir = tmp.path();
        let put = |name: &str, bytes: &[u8], mode: u32| {
            let p = dir.join(name);
            fs::write(&p, bytes).expect("write");
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        // What a killed create leaves: removed once old enough.
        let stale = put(".2fa.key.new-a1B2c3", &[7u8; 32], 0o400);
        let empty = put(".2fa.key.new-ZZZZZZ", &[], 0o400);
        // Young: maybe another process's, being written.
        let young = put(".2fa.key.new-young1", &[7u8; 32], 0o400);
        // Not ours: other names, modes, sizes, kinds.
        let kept = [
            put(".2fa.key.new-abc", &[7u8; 32], 0o400),
            put(".2fa.key.new-abcdefg", &[7u8; 32], 0o400),
            put(".2fa.key.new-ab.def", &[7u8; 32], 0o400),
            put("2fa.key.new-abcdef", &[7u8; 32], 0o400),
            put(".2fa.key.new-mode06", &[7u8; 32], 0o600),
            put(".2fa.key.new-large1", &[7u8; 33], 0o400),
        ];
        let target = put("precious", &[1u8; 32], 0o400);
        let link = dir.join(".2fa.key.new-link01");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let subdir = dir.join(".2fa.key.new-dir001");
        fs::create_dir(&subdir).expect("mkdir");
        for p in [&stale, &empty, &target, &subdir]
            .into_iter()
            .chain(kept.iter())
        {
            age(p, 3600);
        }
        let removed = remove_stale_temporaries(&key).expect("clean");
        let mut removed_names: Vec<_> = removed
            .iter()
            .map(|p| p.file_name().expect("name").to_owned())
            .collect();
        removed_names.sort();
        assert_eq!(
            removed_names,
            [".2fa.key.new-ZZZZZZ", ".2fa.key.new-a1B2c3"]
        );
        assert!(!stale.exists() && !empty.exists());
        for p in kept.iter().chain([&young, &target, &subdir, &key]) {
            assert!(p.exists(), "{} was removed", p.display());
        }
        assert!(
            fs::symlink_metadata(&link).is_ok(),
            "the symlink was removed"
        );
        assert_eq!(fs::read(&target).expect("target"), [1u8; 32]);
        // Once old enough, the young one goes too; a second run finds nothing else.
        age(&young, 3600);
        assert_eq!(remove_stale_temporaries(&key).expect("clean").len(), 1);
        assert!(remove_stale_temporaries(&key).expect("clean").is_empty());
        // A directory others may write is not cleaned: refused like the key.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = remove_stale_temporaries(&key).expect_err("loose dir");
        assert_eq!(err.exit_code(), 10);
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    }

    #[test]
    fn refuses_loose_modes_wrong_sizes_and_directories() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("2fa.key");
        fs::write(&path, [1u8; 32]).expect("write");
        for mode in [0o644, 0o440, 0o404, 0o600 | 0o002] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = load(&path).expect_err("loose");
            assert_eq!(err.exit_code(), 10);
            assert!(err.message().contains("chmod 0400"), "{}", err.message());
        }
        for (len, what) in [(0, "0 bytes"), (31, "31 bytes"), (33, "more than 32")] {
            fs::remove_file(&path).expect("rm");
            fs::write(&path, vec![1u8; len]).expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
            let err = load(&path).expect_err("size");
            assert!(err.message().contains(what), "{}", err.message());
        }
        let err = load(tmp.path()).expect_err("dir");
        assert!(err.message().contains("not a regular file"));
        // A key in a directory others may write could have been planted.
        fs::remove_file(&path).expect("rm");
        fs::write(&path, [1u8; 32]).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
        load(&path).expect("good key").expect("present");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = load(&path).expect_err("loose dir");
        assert!(
            err.message().contains("writable by group or others"),
            "{}",
            err.message()
        );
        let err = create(&tmp.path().join("new.key")).expect_err("loose dir");
        assert!(
            err.message().contains("writable by group or others"),
            "{}",
            err.message()
        );
        assert!(!tmp.path().join("new.key").exists());
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
    }
}
