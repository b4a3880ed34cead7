//! Smoke tests of this binary's own surface; the lifecycle is in tests/blackbox.

// Test code: a failed setup step should panic with its message.
#![allow(clippy::expect_used)]

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

/// Enroll through the library (the setup), then drive the real binary on a
/// pseudo-terminal with `script(1)` and answer its prompt.
fn prompt_answer(answer: &str) -> (Option<i32>, String, bool) {
    use mb2fa_core::{account, clock::SystemClock, email::Email, store};
    use std::io::Write;
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("2fa.db");
    let email = Email::parse("tty@example.com").expect("email");
    let mut s = store::Store::open(&store::Location::Sqlite(db.clone()), store::OpenMode::Init)
        .expect("open");
    s.unlock(&dir.path().join("2fa.key")).expect("key");
    let ctx = account::Ctx::new(&SystemClock, "test");
    account::enable(&mut s, &ctx, &email, "Mailborder", false).expect("enable");
    drop(s);

    let cmd = format!(
        "{} --db {} --email tty@example.com",
        env!("CARGO_BIN_EXE_mb-2fa-disable"),
        db.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("MB2FA_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answer.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let mut s = store::Store::open(
        &store::Location::Sqlite(db.clone()),
        store::OpenMode::MustExist,
    )
    .expect("open");
    let still_enrolled = account::state(&mut s, &email).expect("state").is_some();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        still_enrolled,
    )
}

#[test]
fn on_a_terminal_it_asks_and_no_keeps_the_enrollment() {
    let (code, screen, enrolled) = prompt_answer("n\n");
    assert!(
        screen.contains("Remove 2FA (pending) for tty@example.com?"),
        "{screen}"
    );
    assert_eq!(code, Some(2), "{screen}");
    assert!(enrolled);
}

#[test]
fn on_a_terminal_yes_removes_it() {
    let (code, screen, enrolled) = prompt_answer("y\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("2FA removed for tty@example.com"),
        "{screen}"
    );
    assert!(!enrolled);
}
