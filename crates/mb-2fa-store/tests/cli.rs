//! Smoke tests of this binary's own surface; the rest is in tests/blackbox
//! (lost_store, migration, planted). Being an integration test of this
//! crate also makes `cargo test --workspace` build the binary those use.

use std::process::Command;

#[test]
fn init_creates_once_and_check_passes_then_fails_without_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("2fa.db");
    let key = dir.path().join("keys/2fa.key");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mb-2fa-store"))
            .args(args)
            .arg("--db")
            .arg(&db)
            .arg("--key-file")
            .arg(&key)
            .env_remove("MB2FA_DB")
            .env_remove("MB2FA_KEY_FILE")
            .env_remove("SUDO_UID")
            .env("MB2FA_SYSLOG_SOCKET", "")
            .output()
            .expect("run")
    };
    // Without a database, check fails and creates nothing.
    assert_eq!(run(&["check"]).status.code(), Some(10));
    assert!(!db.exists());
    assert_eq!(run(&["init"]).status.code(), Some(0));
    assert!(db.exists() && key.exists());
    assert_eq!(run(&["init"]).status.code(), Some(10), "only once");
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok   key"));
    std::fs::remove_file(&key).expect("rm key");
    // A missing key is a failed check; check never makes one.
    assert_eq!(run(&["check"]).status.code(), Some(10));
    assert!(!key.exists());
}
