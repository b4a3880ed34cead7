//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

use std::process::Command;

#[test]
fn missing_email_is_a_one_line_usage_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_mb-2fa-backup-codes"))
        .arg("--db")
        .arg(dir.path().join("2fa.db"))
        .env_remove("MB2FA_DB")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--email"), "{err}");
}
