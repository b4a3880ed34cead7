//! Global options every tool takes: -h, -V, -q, --db and MB2FA_DB.

use std::ffi::OsStr;

use mb2fa_testkit::{BACKUP_CODES, DISABLE, ENABLE, Env, LIST, TOOLS, VERIFY, totp_now};

const ALICE: &str = "alice@example.com";

#[test]
fn help_and_version_exit_0_on_stdout() {
    let env = Env::new();
    for tool in TOOLS {
        for flag in ["-h", "--help"] {
            let run = env.run_bare(tool, [flag], &[]);
            run.expect_code(0);
            for opt in ["--db", "--json", "--quiet"] {
                assert!(
                    run.stdout.contains(opt),
                    "{tool} {flag} must document {opt}\n{run}"
                );
            }
        }
        for flag in ["-V", "--version"] {
            let run = env.run_bare(tool, [flag], &[]);
            run.expect_code(0);
            assert!(run.stdout.starts_with(tool), "{run}");
            assert!(
                run.stdout
                    .trim()
                    .split(' ')
                    .nth(1)
                    .is_some_and(|v| v.contains('.')),
                "{run}"
            );
        }
    }
    assert!(
        std::fs::read_dir(env.dir.path())
            .expect("dir")
            .next()
            .is_none(),
        "help or version touched the disk"
    );
}

#[test]
fn mb2fa_db_is_used_when_db_is_absent() {
    let env = Env::new();
    let db = env.path("from-env.db");
    let vars: [(&str, &OsStr); 1] = [("MB2FA_DB", db.as_os_str())];
    let run = env.run_bare(ENABLE, ["--json", "--qr", "none", "--email", ALICE], &vars);
    let doc = run.ok_json();
    assert!(db.is_file(), "MB2FA_DB was not honoured\n{run}");
    let secret = doc["secret"].as_str().expect("secret").to_string();
    let run = env.run_bare(
        VERIFY,
        ["--json", "--email", ALICE, "--code", &totp_now(&secret, 0)],
        &vars,
    );
    run.ok_json();
    let run = env.run_bare(LIST, ["--json"], &vars);
    assert_eq!(run.ok_json()["accounts"][0]["email"], ALICE, "{run}");
}

#[test]
fn db_wins_over_mb2fa_db() {
    let env = Env::new();
    let decoy = env.path("decoy.db");
    let vars: [(&str, &OsStr); 1] = [("MB2FA_DB", decoy.as_os_str())];
    let run = env.run_env(ENABLE, ["--json", "--qr", "none", "--email", ALICE], &vars);
    run.ok_json();
    assert!(env.db.is_file());
    assert!(!decoy.exists(), "MB2FA_DB was used although --db was given");
}

#[test]
fn quiet_is_accepted_by_every_tool() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let run = env.run(
        VERIFY,
        ["-q", "--email", ALICE, "--code", &totp_now(&e.secret, 0)],
    );
    run.expect_code(0);
    env.run(LIST, ["--quiet"]).expect_code(0);
    env.run(BACKUP_CODES, ["-q", "--email", ALICE])
        .expect_code(0);
    let run = env.run(ENABLE, ["-q", "--force", "--qr", "none", "--email", ALICE]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("otpauth://"),
        "quiet enable must still give the URI\n{run}"
    );
    env.run(DISABLE, ["-q", "--yes", "--email", ALICE])
        .expect_code(0);
    // Errors still go to stderr.
    env.run(DISABLE, ["-q", "--yes", "--email", ALICE])
        .fail_line(3, DISABLE, ALICE);
}
