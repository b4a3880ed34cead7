//! Planted key files (issue 12, item 3): a key file the tools did not make
//! safely is never used to seal or open a secret.

use std::os::unix::fs::PermissionsExt;

use mb2fa_tests::{ENABLE, Env, write_key_file};

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Enrolling with `key` must fail with exit 10 naming `fragment`, and
/// create no database row sealed with that key.
#[track_caller]
fn refused(env: &Env, key: &std::path::Path, fragment: &str) {
    let run = env.run(
        ENABLE,
        [
            "--json",
            "--qr",
            "none",
            "--email",
            "alice@example.com",
            "--key-file",
            key.to_str().expect("utf-8 path"),
        ],
    );
    let message = run.fail_json(10, "storage");
    assert!(message.contains(fragment), "{message}\n{run}");
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
