//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mb-2fa-enable"));
    c.env_remove("MB2FA_DB");
    c
}

#[test]
fn help_and_version() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--email", "--issuer", "--force", "--qr", "--db", "--json", "--quiet",
    ] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
    let out = bin().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_qr_style_is_a_usage_error_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("2fa.db");
    let out = bin()
        .args(["--email", "a@example.com", "--qr", "sixel", "--db"])
        .arg(&db)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    assert!(!db.exists());
}
