//! `--code -` reads the code from stdin (so it never shows in `ps`), and a
//! code never appears in the output of a failing command.

use mb2fa_testkit::{DISABLE, Env, VERIFY, totp_now, wrong_code};

const ALICE: &str = "alice@example.com";

#[test]
fn totp_code_from_stdin() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let code = totp_now(&e.secret, 0);
    let run = env.run_stdin(
        VERIFY,
        ["--json", "--email", ALICE, "--code", "-"],
        format!("{code}\n").as_bytes(),
    );
    assert_eq!(run.ok_json()["activated"], true, "{run}");
    // Replayed through stdin: rejected just the same.
    let run = env.run_stdin(
        VERIFY,
        ["--email", ALICE, "--code", "-"],
        format!("{code}\n").as_bytes(),
    );
    run.fail_line(1, VERIFY, "");
    run.assert_not_echoed(&code);
}

#[test]
fn backup_code_from_stdin_without_newline_and_with_crlf() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let run = env.run_stdin(
        VERIFY,
        ["--json", "--email", ALICE, "--code", "-"],
        e.backup_codes[0].as_bytes(),
    );
    assert_eq!(run.ok_json()["method"], "backup_code", "{run}");
    let run = env.run_stdin(
        VERIFY,
        ["--json", "--email", ALICE, "--code", "-"],
        format!("{}\r\n", e.backup_codes[1]).as_bytes(),
    );
    assert_eq!(run.ok_json()["backup_codes_left"], 8, "{run}");
}

#[test]
fn only_the_first_line_of_stdin_is_the_code() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let code = totp_now(&e.secret, 0);
    let run = env.run_stdin(
        VERIFY,
        ["--json", "--email", ALICE, "--code", "-"],
        format!("{code}\nsomething else\n").as_bytes(),
    );
    run.ok_json();
}

#[test]
fn empty_stdin_is_a_malformed_code() {
    let env = Env::new();
    env.enroll(ALICE);
    let before = env.snapshot();
    env.run_stdin(VERIFY, ["--email", ALICE, "--code", "-"], b"")
        .fail_line(2, VERIFY, "malformed code");
    env.run_stdin(VERIFY, ["--email", ALICE, "--code", "-"], b"\n")
        .fail_line(2, VERIFY, "malformed code");
    env.run_stdin(
        VERIFY,
        ["--json", "--email", ALICE, "--code", "-"],
        b"12345\n",
    )
    .fail_json(2, "usage");
    for input in [&b"123\x00456\n"[..], b"12\xff3456\n", b"123\x1b456\n"] {
        let run = env.run_stdin(VERIFY, ["--email", ALICE, "--code", "-"], input);
        run.fail_line(2, VERIFY, "malformed code");
        run.assert_not_echoed("456");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_wrong_code_is_never_echoed() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let wrong = wrong_code(&e.secret);
    let spaced = format!("{} {}", &wrong[..3], &wrong[3..]);
    // Four failures (under the lockout threshold of 5), through stdin and
    // argv, human and JSON.
    let cases: [(&str, bool, bool); 4] = [
        (&wrong, true, false),
        (&spaced, true, true),
        (&wrong, false, true),
        (&spaced, false, false),
    ];
    for (input, from_stdin, json) in cases {
        let mut args = vec![
            "--email",
            ALICE,
            "--code",
            if from_stdin { "-" } else { input },
        ];
        if json {
            args.insert(0, "--json");
        }
        let run = if from_stdin {
            env.run_stdin(VERIFY, &args, format!("{input}\n").as_bytes())
        } else {
            env.run(VERIFY, &args)
        };
        run.expect_code(1);
        if !json {
            run.fail_line(1, VERIFY, "");
        }
        run.assert_not_echoed(&wrong);
        run.assert_not_echoed(&spaced);
        run.assert_not_echoed(&e.secret);
    }
    // A success resets the failure count.
    env.verify_json(ALICE, &e.backup_codes[0]).ok_json();
    // Nor an unknown backup code, nor through disable.
    let fake = "ZZZZ-ZZZZ-ZZZZ";
    let run = env.run(VERIFY, ["--email", ALICE, "--code", fake]);
    run.fail_line(1, VERIFY, "");
    run.assert_not_echoed(fake);
    run.assert_not_echoed("ZZZZZZZZZZZZ");
    let run = env.run_stdin(
        DISABLE,
        ["--yes", "--email", ALICE, "--code", "-"],
        format!("{wrong}\n").as_bytes(),
    );
    run.fail_line(1, DISABLE, "");
    run.assert_not_echoed(&wrong);
    assert_eq!(env.accounts().len(), 1);
}

#[test]
fn disable_reads_the_code_from_stdin() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let run = env.run_stdin(
        DISABLE,
        ["--json", "--yes", "--email", ALICE, "--code", "-"],
        format!("{}\n", totp_now(&e.secret, 1)).as_bytes(),
    );
    assert_eq!(run.ok_json()["disabled"], true, "{run}");
    assert!(env.accounts().is_empty());
}
