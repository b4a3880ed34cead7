//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

use std::process::Command;

#[test]
fn missing_database_is_exit_10_in_json_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_mb-2fa-list"))
        .arg("--json")
        .arg("--db")
        .arg(dir.path().join("2fa.db"))
        .env_remove("MB2FA_DB")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(10));
    let doc = String::from_utf8_lossy(&out.stdout);
    assert!(doc.contains(r#""ok":false"#), "{doc}");
    assert!(doc.contains(r#""kind":"storage""#), "{doc}");
}
