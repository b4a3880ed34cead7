//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

use std::process::Command;

#[test]
fn help_names_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_mb-2fa-disable"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in ["--email", "--code", "--yes", "--db", "--json"] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
}
