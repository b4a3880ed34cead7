//! Secrets shown once are never silently lost (issue 12 item 11): every
//! output is created before the commit, and a failure to deliver after it is
//! exit 10 with the state the account is in and how to recover.

use std::fs::File;
use std::process::Stdio;

use mb2fa_testkit::{BACKUP_CODES, ENABLE, Env, LIST};

const ALICE: &str = "alice@example.com";

#[test]
fn a_qr_file_that_cannot_be_made_stops_the_enrollment_before_it_happens() {
    let env = Env::new();
    let missing = env.path("missing/x.svg");
    let run = env.run(
        ENABLE,
        [
            "--json",
            "--email",
            ALICE,
            "--qr-file",
            missing.to_str().expect("utf-8"),
        ],
    );
    let message = run.fail_json(10, "storage");
    assert!(message.contains("nothing was enrolled"), "{run}");
    assert!(!message.contains("on screen"), "{run}");
    assert!(
        !env.db.exists() || env.accounts().is_empty(),
        "enrolled anyway\n{run}"
    );
    // A symlink planted at the name is not followed.
    let target = env.path("target.svg");
    let link = env.path("link.svg");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let run = env.run(
        ENABLE,
        [
            "--json",
            "--email",
            ALICE,
            "--qr-file",
            link.to_str().expect("utf-8"),
        ],
    );
    run.fail_json(2, "usage");
    assert!(!target.exists(), "{run}");
    // A good one is made 0600 with the QR code in it.
    let good = env.path("good.svg");
    env.run(
        ENABLE,
        [
            "--json",
            "--email",
            ALICE,
            "--qr-file",
            good.to_str().expect("utf-8"),
        ],
    )
    .ok_json();
    assert_eq!(mb2fa_testkit::mode(&good), 0o600);
    assert!(
        std::fs::read_to_string(&good)
            .expect("svg")
            .contains("<svg")
    );
}

fn to_dev_full(env: &Env, tool: &str, args: &[&str]) -> mb2fa_testkit::Run {
    let mut cmd = env.command(tool, args);
    cmd.stdout(Stdio::from(File::create("/dev/full").expect("/dev/full")));
    let out = cmd.stderr(Stdio::piped()).output().expect("run");
    mb2fa_testkit::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        cmdline: format!("{cmd:?} > /dev/full"),
        output: out,
    }
}

#[test]
fn a_full_stdout_after_the_commit_is_exit_10_with_the_way_out() {
    let env = Env::new();
    for json in [false, true] {
        let mut args = vec!["--email", ALICE, "--force"];
        if json {
            args.push("--json");
        }
        let run = to_dev_full(&env, ENABLE, &args);
        assert_eq!(run.code, 10, "{run}");
        assert!(run.stderr.contains("were not delivered"), "{run}");
        assert!(
            run.stderr
                .contains("mb-2fa-enable --email alice@example.com --force"),
            "{run}"
        );
        assert!(
            !run.stderr.contains("otpauth"),
            "no secret in the message\n{run}"
        );
    }
    let run = to_dev_full(&env, BACKUP_CODES, &["--email", ALICE]);
    assert_eq!(run.code, 10, "{run}");
    assert!(
        run.stderr
            .contains("mb-2fa-backup-codes --email alice@example.com"),
        "{run}"
    );
    // Any other tool: a failed write is exit 10 too, never a silent 0.
    let run = to_dev_full(&env, LIST, &[]);
    assert_eq!(run.code, 10, "{run}");
    assert!(run.stderr.contains("stdout"), "{run}");
}
