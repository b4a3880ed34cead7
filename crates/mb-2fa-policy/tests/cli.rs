//! Smoke tests of this binary's own surface; the policy lifecycle is in tests/blackbox.

use std::process::Command;

#[test]
fn check_fails_closed_without_a_database() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("2fa.db");
    let out = Command::new(env!("CARGO_BIN_EXE_mb-2fa-policy"))
        .args(["check", "--email", "a@example.com", "--json", "--db"])
        .arg(&db)
        .env_remove("MB2FA_DB")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(10),
        "never 6 (let in) on a storage error"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""kind":"storage""#));
    assert!(!db.exists());
}
