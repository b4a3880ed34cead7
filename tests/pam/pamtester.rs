//! pamtester against a service file that loads the module: every outcome,
//! each with its PAM result and its audit record.

use mb2fa_testkit::pam::{PamEnv, SERVICE, authenticated, available, chmod};
use mb2fa_testkit::{Enrolled, POLICY, in_one_step, totp_now, wrong_codes};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const ARGS: &str = "account=%u@example.com";

/// The audit records about `email`, oldest first (the tool lists the
/// newest first).
fn records(p: &PamEnv, email: &str) -> Vec<Value> {
    p.records(email)
}

fn last(p: &PamEnv, email: &str) -> Value {
    records(p, email)
        .pop()
        .unwrap_or_else(|| panic!("no audit record for {email}"))
}

fn enrolled(p: &PamEnv) -> Enrolled {
    p.env.enroll(ALICE)
}

#[track_caller]
fn assert_via(record: &Value, user: &str) {
    let via = record["via"].as_str().unwrap_or_default();
    assert!(
        via.starts_with(&format!("pam service={SERVICE} user={user}")),
        "the record names the PAM service and user: {record}"
    );
}

#[test]
fn a_current_code_logs_in_once_and_a_replay_does_not() {
    if !available() {
        return;
    }
    // A fresh enrollment each round: a round that crossed a step boundary
    // has activated its account.
    let (p, first, replay) = in_one_step(|| {
        let p = PamEnv::new(ARGS);
        let e = enrolled(&p);
        let code = totp_now(&e.secret, 0);
        let first = p.pamtester("alice", &format!("{code}\n"));
        let replay = p.pamtester("alice", &format!("{code}\n"));
        (p, first, replay)
    });
    assert!(authenticated(&first), "{first}");
    assert!(
        first.stderr.contains("Verification code: "),
        "prompted: {first}"
    );
    assert!(!authenticated(&replay), "{replay}");
    let recs = records(&p, ALICE);
    let verifies: Vec<&Value> = recs.iter().filter(|r| r["action"] == "verify").collect();
    assert_eq!(verifies.len(), 2, "{recs:?}");
    assert_eq!(verifies[0]["outcome"], "activated");
    assert_eq!(verifies[1]["outcome"], "rejected");
    assert!(
        verifies[1]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("replay")
    );
    for r in &verifies {
        assert_via(r, "alice");
    }
    assert_eq!(
        p.env.account(ALICE)["failed_attempts"],
        0,
        "a replay is not counted"
    );
}

#[test]
fn a_backup_code_logs_in_once() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    let e = enrolled(&p);
    p.env.activate(&e);
    let code = &e.backup_codes[3];
    let run = p.pamtester("alice", &format!("{code}\n"));
    assert!(authenticated(&run), "{run}");
    let r = last(&p, ALICE);
    assert_eq!(
        (r["action"].as_str(), r["outcome"].as_str()),
        (Some("verify"), Some("accepted"))
    );
    assert!(r["detail"].as_str().unwrap_or("").contains("backup"), "{r}");
    assert_via(&r, "alice");
    let again = p.pamtester("alice", &format!("{code}\n"));
    assert!(!authenticated(&again), "{again}");
    assert_eq!(last(&p, ALICE)["outcome"], "rejected");
    assert_eq!(p.env.account(ALICE)["backup_codes_left"], 9);
}

#[test]
fn wrong_codes_lock_the_account_and_the_lock_is_told_with_its_time() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    let e = enrolled(&p);
    p.env.activate(&e);
    for code in wrong_codes(&e.secret, 5) {
        let run = p.pamtester("alice", &format!("{code}\n"));
        assert!(!authenticated(&run), "{run}");
    }
    let account = p.env.account(ALICE);
    assert_eq!(account["failed_attempts"], 5, "{account}");
    let until = account["locked_until"]
        .as_str()
        .expect("locked")
        .to_string();
    // Locked: even the right code is refused, and the user is told until when.
    let run = p.pamtester("alice", &format!("{}\n", totp_now(&e.secret, 0)));
    assert!(!authenticated(&run), "{run}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("locked until") && said.contains(&until),
        "{run}"
    );
    assert!(
        said.contains("retries") || run.code != 0,
        "PAM_MAXTRIES: {run}"
    );
    let r = last(&p, ALICE);
    assert_eq!(r["outcome"], "locked", "{r}");
    assert_via(&r, "alice");
}

#[test]
fn not_enrolled_when_2fa_is_not_required_logs_in_without_a_prompt() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    p.env.init();
    let run = p.pamtester("bob", "");
    assert!(authenticated(&run), "{run}");
    assert!(
        !run.stderr.contains("Verification code"),
        "no prompt: {run}"
    );
    let r = last(&p, "bob@example.com");
    assert_eq!(
        (r["action"].as_str(), r["outcome"].as_str()),
        (Some("check"), Some("allowed"))
    );
    assert_via(&r, "bob");
}

#[test]
fn required_2fa_lets_in_during_the_grace_period_with_a_deadline_then_denies() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    p.env.init();
    p.env
        .run(POLICY, ["set", "--require-all", "on", "--grace-days", "7"])
        .expect_code(0);
    let run = p.pamtester("bob", "");
    assert!(authenticated(&run), "{run}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("required for this account from"),
        "the deadline is told: {run}"
    );
    let r = last(&p, "bob@example.com");
    assert_eq!(r["outcome"], "setup", "{r}");
    assert_via(&r, "bob");
    // After the grace period (none at all now): denied, with the reason.
    p.env
        .run(POLICY, ["set", "--grace-days", "0"])
        .expect_code(0);
    let run = p.pamtester("bob", "");
    assert!(!authenticated(&run), "{run}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("Access denied"), "{run}");
    let r = last(&p, "bob@example.com");
    assert_eq!(r["outcome"], "denied", "{r}");
    assert_via(&r, "bob");
}

#[test]
fn the_break_glass_account_logs_in_and_is_alerted() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    p.env.init();
    p.env
        .run(POLICY, ["set", "--require-all", "on", "--grace-days", "0"])
        .expect_code(0);
    p.env
        .run(
            POLICY,
            [
                "exempt",
                "--email",
                "glass@example.com",
                "--kind",
                "break-glass",
                "--reason",
                "safe",
            ],
        )
        .expect_code(0);
    p.syslog();
    let run = p.pamtester("glass", "");
    assert!(authenticated(&run), "{run}");
    let recs = records(&p, "glass@example.com");
    let glass: Vec<&Value> = recs
        .iter()
        .filter(|r| r["outcome"] == "break_glass")
        .collect();
    assert_eq!(glass.len(), 1, "one break-glass record: {recs:?}");
    assert_via(glass[0], "glass");
    let log = p.syslog();
    if std::path::Path::new("/dev/log").exists() {
        assert!(
            log.iter()
                .any(|l| l.contains("break_glass") && l.contains("via=")),
            "the alert reached syslog with the login's origin: {log:?}"
        );
    } else {
        // No syslog here: the alert that could not be sent is itself on
        // the record, after the login it is about.
        assert_eq!(
            recs.last().map(|r| r["outcome"].clone()),
            Some(Value::from("undelivered")),
            "an undelivered alert is recorded: {recs:?}"
        );
    }
}

#[test]
fn missing_or_untrusted_tools_fail_closed() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    p.env.init();
    // Not required, so a working module would let bob in: these must not.
    let empty = p.env.path("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    chmod(&empty, 0o755);
    p.service(SERVICE, &format!("{ARGS} bindir={}", empty.display()));
    let run = p.pamtester("bob", "");
    assert!(!authenticated(&run), "no tool: {run}");
    chmod(&p.bindir, 0o777);
    p.service(SERVICE, ARGS);
    let run = p.pamtester("bob", "");
    assert!(!authenticated(&run), "a bindir others can write: {run}");
    chmod(&p.bindir, 0o755);
    chmod(&p.bindir.join("mb-2fa-verify"), 0o777);
    let run = p.pamtester("bob", "");
    assert!(!authenticated(&run), "a tool others can write: {run}");
    chmod(&p.bindir.join("mb-2fa-verify"), 0o755);
    let run = p.pamtester("bob", "");
    assert!(authenticated(&run), "and trusted again: {run}");
    assert!(
        records(&p, "bob@example.com").len() == 1,
        "only the last login ran the tool"
    );
}

#[test]
fn a_user_the_map_does_not_know_fails_closed() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    p.env.init();
    let map = p.env.path("2fa-users");
    std::fs::write(&map, "# user email\ncarol carol.admin@example.com\n").unwrap();
    chmod(&map, 0o644);
    p.service(SERVICE, &format!("map={}", map.display()));
    let run = p.pamtester("carol", "");
    assert!(authenticated(&run), "{run}");
    assert_eq!(last(&p, "carol.admin@example.com")["outcome"], "allowed");
    let run = p.pamtester("dave", "");
    assert!(!authenticated(&run), "{run}");
    assert!(records(&p, "dave@example.com").is_empty());
    // A map others can write decides nothing.
    chmod(&map, 0o666);
    let run = p.pamtester("carol", "");
    assert!(!authenticated(&run), "{run}");
}

#[test]
fn a_tool_that_hangs_is_killed_and_the_login_fails() {
    if !available() {
        return;
    }
    let p = PamEnv::new(&format!("{ARGS} timeout=1"));
    let tool = p.bindir.join("mb-2fa-verify");
    std::fs::write(&tool, "#!/bin/sh\nexec sleep 600\n").unwrap();
    chmod(&tool, 0o755);
    let run = p.pamtester("bob", "");
    assert!(!authenticated(&run), "{run}");
    let log = p.syslog();
    if std::path::Path::new("/dev/log").exists() {
        assert!(
            log.iter().any(|l| l.contains("did not answer in time")),
            "{log:?}"
        );
    }
}

#[test]
fn a_code_with_junk_is_refused_and_not_counted() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    let e = enrolled(&p);
    p.env.activate(&e);
    for junk in [
        "12345x",
        "\u{1b}[2J123456",
        "123456; rm -rf /",
        &"9".repeat(200),
    ] {
        let run = p.pamtester("alice", &format!("{junk}\n"));
        assert!(!authenticated(&run), "{junk:?}: {run}");
        assert!(
            !run.stdout.contains("rm -rf") && !run.stderr.contains("\u{1b}[2J"),
            "{run}"
        );
    }
    assert_eq!(p.env.account(ALICE)["failed_attempts"], 0);
    // Nor does anything of it reach the audit trail.
    for r in records(&p, ALICE) {
        assert!(!r.to_string().contains("12345x"), "{r}");
    }
}

#[test]
fn bad_module_options_fail_closed() {
    if !available() {
        return;
    }
    let p = PamEnv::new(ARGS);
    p.env.init();
    for args in [
        "",
        "account=nouser@example.com",
        "account=%u@example.com nullok",
        "map=relative",
    ] {
        p.service(SERVICE, args);
        let run = p.pamtester("bob", "");
        assert!(!authenticated(&run), "{args:?}: {run}");
    }
}
