//! Out-of-range stored times (issue 12, item 7): a value a database writer
//! planted never makes a tool panic or abort, the login path included.

use mb2fa_testkit::{Env, LIST, UNLOCK, totp_now};

#[test]
fn a_lock_in_the_far_future_is_exit_10_naming_the_field_and_unlock_clears_it() {
    let env = Env::new();
    let e = env.enroll("alice@example.com");
    env.activate(&e);
    env.connect()
        .execute(
            "UPDATE accounts SET locked_until = 300000000000, failed_attempts = 9 WHERE email = ?1",
            ["alice@example.com"],
        )
        .expect("plant");
    // A time no tool writes: exit 10 naming the field, not a panic (101)
    // or an abort (134), and never "not locked".
    let run = env.verify_json(&e.email, &totp_now(&e.secret, 1));
    let message = run.fail_json(10, "storage");
    assert!(message.contains("accounts.locked_until"), "{run}");
    let run = env.run(LIST, ["--json"]);
    assert!(
        run.fail_json(10, "storage")
            .contains("accounts.locked_until"),
        "{run}"
    );
    env.run(LIST, Vec::<&str>::new()).expect_code(10);
    // The admin's way out still works: unlock clears the planted lock.
    env.run(UNLOCK, ["--json", "--email", "alice@example.com"])
        .ok_json();
    env.verify_json(&e.email, &totp_now(&e.secret, 1)).ok_json();
}

/// No tool can dump core (issue 12 item 7): a dump would hold the key and
/// the secrets. A tool waiting for its code on stdin shows RLIMIT_CORE 0 in
/// /proc, and (run as another user, which needs root) is not dumpable: its
/// /proc entry then belongs to root, not to the user.
#[test]
fn no_tool_can_dump_core() {
    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt as _;
    let env = Env::new();
    let e = env.enroll("alice@example.com");
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut cmd = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(mb2fa_testkit::bin(mb2fa_testkit::VERIFY));
        c
    } else {
        std::process::Command::new(mb2fa_testkit::bin(mb2fa_testkit::VERIFY))
    };
    cmd.args(["--email", &e.email, "--code", "-"])
        .env("MB2FA_DB", env.path("nowhere.db"))
        .env("MB2FA_SYSLOG_SOCKET", "")
        .env_remove("SUDO_UID")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    // Wait until it is the tool (not setpriv) and it is blocked on stdin.
    let mut limits = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe.ends_with(mb2fa_testkit::VERIFY) {
            limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
            // Soft and hard: a soft 0 alone is a common default of the
            // caller's shell, in place before the tool ran.
            if limits.lines().any(|l| {
                l.starts_with("Max core file size")
                    && l.split_whitespace().collect::<Vec<_>>().get(4..6) == Some(&["0", "0"][..])
            }) {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default()
        .to_string();
    let fields: Vec<&str> = core.split_whitespace().collect();
    // (Set before RLIMIT_CORE, so it is in place once the limit shows.)
    let owner = std::fs::metadata(format!("/proc/{pid}/status")).map(|m| m.uid());
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"000000\n")
        .ok();
    let _ = child.wait();
    assert_eq!(
        fields.get(4..6),
        Some(&["0", "0"][..]),
        "soft and hard RLIMIT_CORE: {core:?}"
    );
    if root {
        assert_eq!(
            owner.expect("stat /proc/pid"),
            0,
            "the tool is dumpable: /proc/{pid}/status belongs to its user"
        );
    } else {
        eprintln!("no_tool_can_dump_core: the dumpable check needs root (CI runs it)");
    }
}

#[test]
fn an_impossible_grace_period_is_exit_10_never_allow() {
    for (key, value) in [
        ("policy.grace_days", "1000000000000"),
        ("policy.grace_days", "-5"),
        ("policy.require_all_since", "300000000000"),
        ("policy.issuer", "Mailborder\u{1b}]0;pwned\u{7}"),
    ] {
        let env = Env::new();
        env.init();
        env.run(mb2fa_testkit::POLICY, ["set", "--require-all", "on"])
            .expect_code(0);
        env.connect()
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .expect("plant");
        let run = env.run(
            mb2fa_testkit::POLICY,
            ["--json", "check", "--email", "bob@example.com"],
        );
        let message = run.fail_json(10, "storage");
        assert!(message.contains(key), "{key}={value}: {run}");
    }
}
