//! The shell snippet the README gives front ends (packaging/examples/
//! login-check.sh) does what it says: ask for a code, allow, or deny, and
//! deny on every other exit, a broken store first of all.

use std::ffi::OsStr;
use std::process::Command;

use mb2fa_testkit::{Env, POLICY};

fn decide(env: &Env, email: &str, roles: &[&str]) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/examples/login-check.sh"
    );
    let bin_dir = mb2fa_testkit::bin(POLICY)
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let out = Command::new("sh")
        .arg(script)
        .arg(email)
        .args(roles)
        .env("PATH", &path)
        .env("MB2FA_DB", &env.db)
        .env("MB2FA_KEY_FILE", &env.key)
        .env("MB2FA_SYSLOG_SOCKET", OsStr::new(""))
        .env_remove("SUDO_UID")
        .output()
        .expect("sh");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_readme_snippet_asks_allows_and_denies_and_fails_closed() {
    let env = Env::new();
    env.init();
    env.run(POLICY, ["set", "--require-all", "on", "--grace-days", "7"])
        .expect_code(0);
    let e = env.enroll("alice@example.com");
    env.activate(&e);
    assert_eq!(decide(&env, "alice@example.com", &[]), "code");
    assert_eq!(
        decide(&env, "bob@example.com", &[]),
        "allow",
        "grace period"
    );
    assert_eq!(decide(&env, "carol@example.com", &["super-admin"]), "deny");
    // A broken store: exit 10, and the snippet denies.
    std::fs::write(&env.db, b"not a database".repeat(400)).expect("break");
    assert_eq!(decide(&env, "alice@example.com", &[]), "deny");
    assert_eq!(decide(&env, "bob@example.com", &[]), "deny");
}
