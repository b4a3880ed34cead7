//! The environment of a tool run as root is not trusted (issue 12 item 12):
//! a silenced syslog does not silence the break-glass alert, PATH does not
//! pick the helper `--diagnose` runs, SUDO_USER cannot forge the actor, and a
//! tool run through sudo for a non-root user takes no file from its caller.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;

use mb2fa_testkit::{Env, POLICY, VERIFY};

const GLASS: &str = "breakglass@example.com";

fn break_glass(env: &Env) {
    env.init();
    env.run(POLICY, ["--json", "set", "--require-all", "on"])
        .ok_json();
    env.run(
        POLICY,
        [
            "--json",
            "exempt",
            "--email",
            GLASS,
            "--kind",
            "break-glass",
            "--reason",
            "safe",
        ],
    )
    .ok_json();
}

#[test]
fn a_break_glass_alert_that_syslog_did_not_get_is_said_and_recorded() {
    let env = Env::new();
    break_glass(&env);
    // Env turns syslog off (MB2FA_SYSLOG_SOCKET=""), as an attacker would.
    let run = env.run(POLICY, ["--json", "check", "--email", GLASS]);
    assert_eq!(run.code, 6, "{run}");
    assert!(
        run.stderr.contains("ALERT not delivered to syslog"),
        "{run}"
    );
    assert!(run.stderr.contains("MB2FA_SYSLOG_SOCKET is empty"), "{run}");
    let records = env.audit(["--email", GLASS]);
    assert_eq!(records[0]["action"], "alert", "{records:#?}");
    assert_eq!(records[0]["outcome"], "undelivered", "{records:#?}");
    assert_eq!(records[1]["outcome"], "break_glass", "{records:#?}");

    // With a syslog that listens: the alert arrives, and nothing is said.
    let sock_path = env.path("log.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let run = env.run_env(
        POLICY,
        ["--json", "check", "--email", GLASS],
        &[("MB2FA_SYSLOG_SOCKET", sock_path.as_os_str())],
    );
    assert_eq!(run.code, 6, "{run}");
    assert!(!run.stderr.contains("ALERT"), "{run}");
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("the alert reached syslog");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(
        msg.starts_with("<33>") && msg.contains("outcome=break_glass"),
        "{msg}"
    );
}

#[test]
fn path_does_not_pick_the_helper_diagnose_runs() {
    let env = Env::new();
    let e = env.enroll("alice@example.com");
    let bin = env.path("evil");
    std::fs::create_dir(&bin).expect("mkdir");
    let marker = env.path("ran");
    let fake = bin.join("timedatectl");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch {}\necho yes\n", marker.display()),
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let code = mb2fa_testkit::totp_now(&e.secret, 0);
    let run = env.run_env(
        VERIFY,
        [
            "--json",
            "--diagnose",
            "--email",
            "alice@example.com",
            "--code",
            &code,
        ],
        &[("PATH", OsStr::new(&path))],
    );
    run.ok_json();
    assert!(!marker.exists(), "the timedatectl of PATH ran\n{run}");
}

#[test]
fn sudo_user_cannot_forge_the_actor() {
    let env = Env::new();
    env.enroll("alice@example.com");
    let me = nix_uid();
    for (user, uid) in [
        ("eve outcome=accepted", None),
        ("eve\u{1b}[31m", None),
        ("nobody", Some("0")),
    ] {
        let mut vars: Vec<(&str, &OsStr)> = vec![("SUDO_USER", OsStr::new(user))];
        if let Some(uid) = uid {
            vars.push(("SUDO_UID", OsStr::new(uid)));
        }
        env.run_env(
            mb2fa_testkit::UNLOCK,
            ["--json", "--email", "alice@example.com"],
            &vars,
        )
        .ok_json();
        let records = env.audit(["--email", "alice@example.com"]);
        assert_eq!(
            records[0]["actor"],
            format!("uid {me} (invalid SUDO_USER)"),
            "{user:?}: {records:#?}"
        );
    }
    // The real thing: a name NSS maps to the uid sudo gave.
    env.run_env(
        mb2fa_testkit::UNLOCK,
        ["--json", "--email", "alice@example.com"],
        &[
            ("SUDO_USER", OsStr::new("root")),
            ("SUDO_UID", OsStr::new("0")),
        ],
    )
    .ok_json();
    assert_eq!(
        env.audit(["--email", "alice@example.com"])[0]["actor"],
        "root"
    );
}

fn nix_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(1)
        .expect("uid")
        .parse()
        .expect("number")
}

#[test]
fn through_sudo_for_a_non_root_user_no_file_is_taken_from_the_caller() {
    let env = Env::new();
    let e = env.enroll("alice@example.com");
    let code = mb2fa_testkit::totp_now(&e.secret, 0);
    let front_end = [
        ("SUDO_UID", OsStr::new("1000")),
        ("SUDO_USER", OsStr::new("www-data")),
    ];
    // --db on the command line (Env passes it).
    let mut cmd = env.command(
        VERIFY,
        ["--json", "--email", "alice@example.com", "--code", &code],
    );
    cmd.env_remove("MB2FA_KEY_FILE")
        .env_remove("MB2FA_SYSLOG_SOCKET")
        .envs(front_end);
    let run = mb2fa_testkit::run_command(cmd, None);
    assert!(
        run.fail_json(2, "usage").contains("--db is not accepted"),
        "{run}"
    );
    // A variable instead of the option.
    let mut cmd = env.bare_command(VERIFY);
    cmd.args(["--json", "--email", "alice@example.com", "--code", &code])
        .env("MB2FA_DB", &env.db)
        .envs(front_end);
    let run = mb2fa_testkit::run_command(cmd, None);
    assert!(run.fail_json(2, "usage").contains("MB2FA_"), "{run}");
    // Each file option is refused by name (the store stays this test's own
    // even if a refusal were missing: --db is passed as well).
    let svg = env.path("x.svg");
    let key = env.path("k.key");
    for (tool, args, named) in [
        (
            mb2fa_testkit::ENABLE,
            vec![
                "--email",
                "b@example.com",
                "--qr-file",
                svg.to_str().expect("utf-8"),
            ],
            "--qr-file",
        ),
        (
            mb2fa_testkit::STORE,
            vec!["check", "--key-file", key.to_str().expect("utf-8")],
            "--key-file",
        ),
    ] {
        let mut cmd = env.command(tool, &args);
        cmd.arg("--json")
            .env_remove("MB2FA_KEY_FILE")
            .env_remove("MB2FA_SYSLOG_SOCKET")
            .envs(front_end);
        let run = mb2fa_testkit::run_command(cmd, None);
        assert!(run.fail_json(2, "usage").contains(named), "{run}");
        assert!(!svg.exists(), "{run}");
    }
    // Root behind sudo (SUDO_UID=0) may use them.
    let run = env.run_env(
        VERIFY,
        ["--json", "--email", "alice@example.com", "--code", &code],
        &[
            ("SUDO_UID", OsStr::new("0")),
            ("SUDO_USER", OsStr::new("root")),
        ],
    );
    run.ok_json();
}
