//! Planted key files (issue 12, item 3): a key file the tools did not make
//! safely is never used to seal or open a secret.

use std::os::unix::fs::PermissionsExt;

use mb2fa_testkit::{ENABLE, Env, STORE, write_key_file};

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Creating a store with `key` must fail with exit 10 naming `fragment`,
/// and create no database (so nothing is ever sealed with that key); nor
/// may an enrollment use it.
#[track_caller]
fn refused(env: &Env, key: &std::path::Path, fragment: &str) {
    let key_arg = key.to_str().expect("utf-8 path");
    let run = env.run(STORE, ["init", "--json", "--key-file", key_arg]);
    let message = run.fail_json(10, "storage");
    assert!(message.contains(fragment), "{message}\n{run}");
    assert!(!env.db.exists(), "a refused key left a database\n{run}");
    let run = env.run(
        ENABLE,
        [
            "--json",
            "--qr",
            "none",
            "--email",
            "alice@example.com",
            "--key-file",
            key_arg,
        ],
    );
    run.fail_json(10, "storage");
    assert!(!env.db.exists(), "{run}");
}

#[test]
fn a_key_in_a_directory_others_may_write_is_refused() {
    let env = Env::new();
    let dir = env.path("shared");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let key = dir.join("2fa.key");
    write_key_file(&key, &[7u8; 32], 0o400);
    refused(&env, &key, "writable by group or others");
    // Nor is a new key created there.
    std::fs::remove_file(&key).expect("rm");
    refused(&env, &key, "writable by group or others");
    assert!(
        !key.exists(),
        "no key was created in a world-writable directory"
    );
}

#[test]
fn a_symlinked_key_is_refused() {
    let env = Env::new();
    let real = env.path("real.key");
    write_key_file(&real, &[7u8; 32], 0o400);
    let link = env.path("link.key");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    refused(&env, &link, "symbolic link");
}

#[test]
fn a_key_owned_by_another_user_is_refused() {
    // Only root can give a file to another user; CI runs as root.
    if !is_root() {
        eprintln!("a_key_owned_by_another_user_is_refused: needs root (CI runs it)");
        return;
    }
    let env = Env::new();
    let key = env.path("2fa.key");
    write_key_file(&key, &[7u8; 32], 0o400);
    std::os::unix::fs::chown(&key, Some(65534), Some(65534)).expect("chown");
    refused(&env, &key, "owned by uid 65534");
}

/// The database, its `-wal` and its `-shm` (items 3 and 4): a file another
/// user may read would let them hold SQLite's lock bytes and block every
/// login; one they may write is theirs. Refused with the command that fixes
/// it, and left as it was.
#[test]
fn a_database_others_may_read_is_refused_with_the_fix() {
    let env = Env::new();
    let alice = env.enroll("alice@example.com");
    for suffix in ["", "-wal", "-shm"] {
        let file = mb2fa_testkit::with_suffix(&env.db, suffix);
        assert!(file.exists(), "{} is kept between runs", file.display());
        for mode in [0o644, 0o660, 0o606] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let before = env.snapshot();
            let run = env.verify_json(&alice.email, &mb2fa_testkit::totp_now(&alice.secret, 0));
            let message = run.fail_json(10, "storage");
            assert!(message.contains("chmod 0600"), "{message}\n{run}");
            assert!(message.contains(&format!("{mode:04o}")), "{message}\n{run}");
            assert_eq!(env.snapshot(), before, "{run}");
            let run = env.run(mb2fa_testkit::LIST, ["--json"]);
            run.fail_json(10, "storage");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    env.activate(&alice);
}

#[test]
fn a_database_in_a_directory_others_may_write_is_refused() {
    let env = Env::new();
    let dir = env.path("shared");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let db = dir.join("2fa.db");
    let run = env.run_bare(
        ENABLE,
        [
            "--db",
            db.to_str().expect("utf-8"),
            "--json",
            "--qr",
            "none",
            "--email",
            "a@example.com",
        ],
        &[],
    );
    assert!(
        run.fail_json(10, "storage")
            .contains("writable by group or others"),
        "{run}"
    );
    assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 0, "{run}");
    assert!(!env.key.exists(), "{run}");
}

#[test]
fn a_database_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("a_database_owned_by_another_user_is_refused: needs root (CI runs it)");
        return;
    }
    let env = Env::new();
    let alice = env.enroll("alice@example.com");
    std::os::unix::fs::chown(&env.db, Some(65534), Some(65534)).expect("chown");
    let run = env.verify_json(&alice.email, &mb2fa_testkit::totp_now(&alice.secret, 0));
    assert!(
        run.fail_json(10, "storage").contains("owned by uid 65534"),
        "{run}"
    );
}
