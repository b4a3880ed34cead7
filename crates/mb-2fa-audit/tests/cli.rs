//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

use std::process::Command;

#[test]
fn help_names_the_options_and_a_missing_database_is_exit_10() {
    let out = Command::new(env!("CARGO_BIN_EXE_mb-2fa-audit"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in ["--email", "--db", "--json"] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("2fa.db");
    let out = Command::new(env!("CARGO_BIN_EXE_mb-2fa-audit"))
        .args(["--email", "a@example.com", "--db"])
        .arg(&db)
        .env_remove("MB2FA_DB")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(10));
    assert!(!db.exists());
}
