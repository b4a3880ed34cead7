//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mb-2fa-verify"));
    c.env_remove("MB2FA_DB");
    c
}

#[test]
fn help_names_the_options() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in ["--email", "--code", "--db", "--json"] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
}

#[test]
fn missing_database_is_a_storage_error_not_no_enrollment() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("2fa.db");
    let out = bin()
        .args(["--email", "a@example.com", "--code", "123456", "--db"])
        .arg(&db)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(10));
    assert!(!db.exists(), "verify must not create the database");
}
