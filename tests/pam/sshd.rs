//! A real OpenSSH sshd on 127.0.0.1 with
//! `AuthenticationMethods publickey,keyboard-interactive:pam` and the module
//! in its PAM stack; the OpenSSH client logs in with a key and a code typed
//! at a (pseudo-)terminal. Only a login that passes both gets a shell.

use mb2fa_testkit::sshd::{Sshd, available};
use mb2fa_testkit::{previous_step_code, totp_now, wrong_code, wrong_codes};
use serde_json::Value;

const ARGS: &str = "account=%u@example.com";

/// The audit records about `email`, oldest first.
fn records(s: &Sshd, email: &str) -> Vec<Value> {
    s.pam.records(email)
}

fn verifies(s: &Sshd) -> Vec<Value> {
    records(s, &s.email())
        .into_iter()
        .filter(|r| r["action"] == "verify")
        .collect()
}

#[track_caller]
fn assert_from_sshd(s: &Sshd, record: &Value) {
    let via = record["via"].as_str().unwrap_or_default();
    assert!(
        via.starts_with(&format!("pam service=sshd user={} rhost=127.0.0.1", s.user)),
        "the record names sshd, the user and where the login came from: {record}"
    );
}

#[test]
fn a_key_and_the_current_code_run_a_command_and_a_replay_gets_no_shell() {
    if !available() {
        return;
    }
    let s = Sshd::start(ARGS);
    let e = s.pam.env.enroll(&s.email());
    // Activated with the previous step's code, so the current one is fresh.
    let run = s
        .pam
        .env
        .verify_json(&e.email, &previous_step_code(&e.secret));
    assert_eq!(run.ok_json()["activated"], true, "{run}");
    let code = totp_now(&e.secret, 0);
    let login = s.login(&code);
    assert!(login.got_a_shell(), "{login}\nsshd log:\n{}", s.log());
    assert_eq!(login.prompts, 1, "{login}");
    assert!(
        login.output.contains(&format!("mb2fa-login-ok {}", s.user)),
        "the command ran as the user: {login}"
    );
    assert!(
        !login.output.contains(&code),
        "the code is not echoed: {login}"
    );
    // The same code again: the step is spent.
    let replay = s.login(&code);
    assert!(!replay.got_a_shell(), "{replay}");
    assert_eq!(replay.status, 255, "{replay}");
    let v = verifies(&s);
    let outcomes: Vec<&str> = v
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect();
    // The activation by the CLI, the login, the replay.
    assert_eq!(outcomes, ["activated", "accepted", "rejected"], "{v:?}");
    assert!(
        v[2]["detail"].as_str().unwrap_or("").contains("replay"),
        "{v:?}"
    );
    assert_from_sshd(&s, &v[1]);
    assert_from_sshd(&s, &v[2]);
}

#[test]
fn a_wrong_code_gets_no_shell_and_is_counted() {
    if !available() {
        return;
    }
    let s = Sshd::start(ARGS);
    let e = s.pam.env.enroll(&s.email());
    s.pam.env.activate(&e);
    let login = s.login(&wrong_code(&e.secret));
    assert!(!login.got_a_shell(), "{login}");
    assert_eq!((login.prompts, login.status), (1, 255), "{login}");
    assert_eq!(s.pam.env.account(&s.email())["failed_attempts"], 1);
    let v = verifies(&s);
    assert_eq!(
        v.last().map(|r| r["outcome"].clone()),
        Some("rejected".into())
    );
    assert_from_sshd(&s, &v[v.len() - 1]);
}

#[test]
fn a_locked_account_gets_no_shell_even_with_the_right_code() {
    if !available() {
        return;
    }
    let s = Sshd::start(ARGS);
    let e = s.pam.env.enroll(&s.email());
    s.pam.env.activate(&e);
    for code in wrong_codes(&e.secret, 5) {
        assert_eq!(s.pam.env.verify_json(&s.email(), &code).code, 1);
    }
    let login = s.login(&totp_now(&e.secret, 0));
    assert!(!login.got_a_shell(), "{login}");
    assert_eq!(login.status, 255, "{login}");
    assert!(
        login.output.contains("locked until"),
        "the user is told the account is locked, and until when: {login}"
    );
    let v = verifies(&s);
    assert_eq!(
        v.last().map(|r| r["outcome"].clone()),
        Some("locked".into())
    );
    assert_from_sshd(&s, &v[v.len() - 1]);
}

#[test]
fn without_the_key_no_code_is_asked_and_nothing_is_told() {
    if !available() {
        return;
    }
    let s = Sshd::start(ARGS);
    let e = s.pam.env.enroll(&s.email());
    s.pam.env.activate(&e);
    let before = records(&s, &s.email()).len();
    let login = s.login_with(&s.stranger_key, &totp_now(&e.secret, 0));
    assert!(!login.got_a_shell(), "{login}");
    assert_eq!(
        login.prompts, 0,
        "the code prompt comes only after the key: {login}"
    );
    assert_eq!(
        records(&s, &s.email()).len(),
        before,
        "the module never ran: the first factor failed"
    );
}
