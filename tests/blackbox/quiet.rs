//! `-q` through every tool: only the essential result, and the change still
//! made. (Before issue 13 the audit table kept its header and the policy and
//! store subcommands printed their confirmations regardless.)

use mb2fa_testkit::{AUDIT, Env, POLICY, STORE, UNLOCK, totp_now};

const ALICE: &str = "alice@example.com";
const GLASS: &str = "glass@example.com";

#[track_caller]
fn quiet_ok(env: &Env, tool: &str, args: &[&str]) -> String {
    let mut all = vec!["-q"];
    all.extend_from_slice(args);
    let run = env.run(tool, &all);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.stderr, "", "{run}");
    run.stdout
}

#[test]
fn confirmations_are_left_out_and_the_change_is_made() {
    let env = Env::new();
    env.init();
    let exempt = [
        "exempt",
        "--email",
        GLASS,
        "--kind",
        "break-glass",
        "--reason",
        "vault",
    ];
    assert_eq!(quiet_ok(&env, POLICY, &exempt), "");
    assert_eq!(quiet_ok(&env, POLICY, &["set", "--require-all", "on"]), "");
    let shown = env.run(POLICY, ["--json", "show"]).ok_json();
    assert_eq!(shown["policy"]["require_all"], true, "{shown}");
    assert_eq!(shown["exemptions"][0]["kind"], "break-glass", "{shown}");
    // A login through the break-glass account, then re-arm it.
    env.run(POLICY, ["check", "--email", GLASS]).expect_code(6);
    assert_eq!(quiet_ok(&env, POLICY, &["seal", "--email", GLASS]), "");
    assert_eq!(quiet_ok(&env, POLICY, &["unexempt", "--email", GLASS]), "");
    let shown = env.run(POLICY, ["--json", "show"]).ok_json();
    assert_eq!(shown["exemptions"], serde_json::json!([]), "{shown}");

    let e = env.enroll(ALICE);
    env.verify_json(ALICE, &totp_now(&e.secret, 0)).ok_json();
    assert_eq!(quiet_ok(&env, UNLOCK, &["--email", ALICE]), "");
}

#[test]
fn policy_show_prints_the_policy_alone() {
    let env = Env::new();
    env.init();
    env.run(
        POLICY,
        [
            "exempt", "--email", GLASS, "--kind", "service", "--reason", "relay",
        ],
    )
    .expect_code(0);
    // require-all without a break-glass account: a warning for people.
    env.run(POLICY, ["set", "--require-all", "on"])
        .expect_code(0);
    let loud = env.run(POLICY, ["show"]);
    assert!(loud.stdout.contains("warning:"), "{loud}");
    assert!(loud.stdout.contains(GLASS), "{loud}");
    let quiet = quiet_ok(&env, POLICY, &["show"]);
    assert!(quiet.contains("require-all      on"), "{quiet}");
    assert!(quiet.contains("grace-days"), "{quiet}");
    assert!(!quiet.contains("warning:"), "{quiet}");
    assert!(!quiet.contains(GLASS), "{quiet}");
}

#[test]
fn audit_prints_the_records_without_the_header() {
    let env = Env::new();
    env.enroll(ALICE);
    let loud = env.run(AUDIT, ["--email", ALICE]);
    assert!(loud.stdout.contains("TIME (UTC)"), "{loud}");
    let quiet = quiet_ok(&env, AUDIT, &["--email", ALICE]);
    assert!(!quiet.contains("TIME (UTC)"), "{quiet}");
    assert!(!quiet.contains("----"), "{quiet}");
    let rows: Vec<&str> = quiet.lines().collect();
    assert_eq!(rows.len(), 1, "{quiet}");
    assert!(
        rows[0].contains("enable") && rows[0].contains(ALICE),
        "{quiet}"
    );
}

#[test]
fn store_init_and_check_say_only_what_failed() {
    let env = Env::new();
    assert_eq!(quiet_ok(&env, STORE, &["init"]), "");
    assert!(env.db.exists() && env.key.exists());
    assert_eq!(quiet_ok(&env, STORE, &["check"]), "");
    std::fs::remove_file(&env.key).expect("remove key");
    let run = env.run(STORE, ["-q", "check"]);
    assert_eq!(run.code, 10, "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{run}");
    assert!(lines[0].starts_with("FAIL key"), "{run}");
}
