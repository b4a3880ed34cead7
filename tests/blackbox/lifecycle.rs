//! The whole life of an enrollment through the binaries, and the state
//! changes around it (replacing, forcing, disabling, regenerating).

use mb2fa_testkit::{
    BACKUP_CODES, DISABLE, ENABLE, Env, LIST, VERIFY, is_backup_code, now_unix, oathtool,
    parse_rfc3339_utc, totp_now, wrong_code,
};
use serde_json::Value;

const ALICE: &str = "alice@example.com";

#[test]
fn full_lifecycle() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    assert_eq!(e.doc["state"], "pending");
    assert_eq!(e.doc["replaced"], Value::Null);

    let pending = env.account(ALICE);
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["activated_at"], Value::Null);
    assert_eq!(pending["backup_codes_left"], 10);

    // Backup codes are refused while the enrollment is pending, and the
    // refusal does not spend the code (it works after activation below).
    env.verify_json(ALICE, &e.backup_codes[2])
        .fail_json(1, "rejected");
    assert_eq!(env.account(ALICE)["backup_codes_left"], 10);

    // The first good TOTP code (from oathtool) activates.
    let code = oathtool(&e.secret, 0);
    let run = env.verify_json(ALICE, &code);
    let v = run.ok_json();
    assert_eq!(v["email"], ALICE, "{run}");
    assert_eq!(v["method"], "totp", "{run}");
    assert_eq!(v["activated"], true, "{run}");
    let offset = v["offset_steps"].as_i64().expect("offset_steps");
    assert!((-1..=1).contains(&offset), "{run}");
    assert_eq!(v["backup_codes_left"], 10, "{run}");

    // The same code again is a replay.
    env.verify_json(ALICE, &code).fail_json(1, "rejected");
    let human = env.run(VERIFY, ["--email", ALICE, "--code", &code]);
    human.fail_line(1, VERIFY, "");
    human.assert_not_echoed(&code);

    // A backup code works once.
    let run = env.verify_json(ALICE, &e.backup_codes[0]);
    let v = run.ok_json();
    assert_eq!(v["method"], "backup_code", "{run}");
    assert_eq!(v["activated"], false, "{run}");
    assert_eq!(v["offset_steps"], Value::Null, "{run}");
    assert_eq!(v["backup_codes_left"], 9, "{run}");
    env.verify_json(ALICE, &e.backup_codes[0])
        .fail_json(1, "rejected");
    env.run(VERIFY, ["--email", ALICE, "--code", &e.backup_codes[0]])
        .expect_code(1);

    // The code refused while pending was not spent.
    let v = env.verify_json(ALICE, &e.backup_codes[2]).ok_json();
    assert_eq!(v["backup_codes_left"], 8);

    // New backup codes: the old unused ones stop working, the new ones work.
    let run = env.run(BACKUP_CODES, ["--json", "--email", ALICE]);
    let doc = run.ok_json();
    assert_eq!(doc["email"], ALICE, "{run}");
    let fresh: Vec<String> = doc["backup_codes"]
        .as_array()
        .expect("backup_codes")
        .iter()
        .map(|c| c.as_str().expect("string").to_string())
        .collect();
    assert_eq!(fresh.len(), 10, "{run}");
    assert!(fresh.iter().all(|c| is_backup_code(c)), "{run}");
    assert!(fresh.iter().all(|c| !e.backup_codes.contains(c)), "{run}");
    env.verify_json(ALICE, &e.backup_codes[1])
        .fail_json(1, "rejected");
    let v = env.verify_json(ALICE, &fresh[5]).ok_json();
    assert_eq!(v["backup_codes_left"], 9);

    // The list shows it.
    let a = env.account(ALICE);
    assert_eq!(a["state"], "active");
    assert_eq!(a["backup_codes_left"], 9);
    assert!(a["activated_at"].is_string());
    assert!(a["last_used_at"].is_string());
    let run = env.run(LIST, Vec::<&str>::new());
    run.expect_code(0);
    assert!(run.stdout.contains(ALICE), "{run}");
    assert!(run.stdout.contains("active"), "{run}");

    // Disable; the account is gone.
    let run = env.run(DISABLE, ["--email", ALICE, "--yes"]);
    run.expect_code(0);
    let next = totp_now(&e.secret, 1);
    env.run(VERIFY, ["--email", ALICE, "--code", &next])
        .fail_line(3, VERIFY, ALICE);
    assert!(env.accounts().is_empty());
    let run = env.run(LIST, Vec::<&str>::new());
    run.expect_code(0);
    assert!(!run.stdout.contains(ALICE), "{run}");
}

#[test]
fn list_times_are_rfc3339_utc_and_current() {
    let env = Env::new();
    let before = now_unix() as i64;
    let e = env.enroll(ALICE);
    env.activate(&e);
    let after = now_unix() as i64;
    let a = env.account(ALICE);
    for key in ["created_at", "activated_at", "last_used_at"] {
        let s = a[key].as_str().unwrap_or_else(|| panic!("{key}: {a}"));
        let t = parse_rfc3339_utc(s).unwrap_or_else(|| panic!("{key} = {s:?} is not RFC 3339 UTC"));
        assert!(
            (before - 1..=after + 1).contains(&t),
            "{key} = {s}, not now"
        );
    }
    assert_eq!(a["locked_until"], Value::Null);
    assert_eq!(a["drift_steps"].as_i64(), Some(0), "{a}");
    assert_eq!(a["issuer"], "Mailborder");
}

#[test]
fn inner_space_totp_and_sloppy_backup_codes_are_accepted() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let code = totp_now(&e.secret, 0);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    env.verify_json(ALICE, &spaced).ok_json();
    // Lower case, spaces instead of hyphens, and none at all.
    let sloppy = e.backup_codes[0].to_lowercase().replace('-', " ");
    assert_eq!(
        env.verify_json(ALICE, &sloppy).ok_json()["backup_codes_left"],
        9
    );
    let bare = e.backup_codes[1].replace('-', "");
    assert_eq!(
        env.verify_json(ALICE, &bare).ok_json()["backup_codes_left"],
        8
    );
    // The sloppy spelling of a spent code is the same spent code.
    env.verify_json(ALICE, &e.backup_codes[0])
        .fail_json(1, "rejected");
}

#[test]
fn later_step_then_earlier_step_is_rejected() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    // Accept the next step first; the current and previous steps are then
    // "earlier" and never accepted again.
    let next = totp_now(&e.secret, 1);
    let v = env.verify_json(ALICE, &next).ok_json();
    assert_eq!(v["activated"], true);
    for offset in [0, -1] {
        let code = totp_now(&e.secret, offset);
        if code == next {
            continue;
        }
        env.verify_json(ALICE, &code).fail_json(1, "rejected");
    }
}

#[test]
fn two_distinct_steps_are_both_accepted() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let run = env.verify_json(ALICE, &totp_now(&e.secret, 1));
    let v = run.ok_json();
    assert_eq!(v["activated"], false, "{run}");
    assert_eq!(v["method"], "totp", "{run}");
}

#[test]
fn wrong_code_is_rejected_and_pending_stays_pending() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let wrong = wrong_code(&e.secret);
    env.verify_json(ALICE, &wrong).fail_json(1, "rejected");
    assert_eq!(env.account(ALICE)["state"], "pending");
}

#[test]
fn a_pending_enrollment_is_replaced_without_force() {
    let env = Env::new();
    let first = env.enroll(ALICE);
    let second = env.enroll(ALICE);
    assert_eq!(second.doc["replaced"], "pending");
    assert_ne!(first.secret, second.secret);
    assert!(
        second
            .backup_codes
            .iter()
            .all(|c| !first.backup_codes.contains(c))
    );
    assert_eq!(env.accounts().len(), 1);
    // The first secret no longer works; the second does.
    let old = totp_now(&first.secret, 0);
    if old != totp_now(&second.secret, 0) {
        env.verify_json(ALICE, &old).fail_json(1, "rejected");
    }
    env.activate(&second);
}

#[test]
fn an_active_enrollment_needs_force() {
    let env = Env::new();
    let first = env.enroll(ALICE);
    env.activate(&first);

    let before = env.accounts();
    env.run(ENABLE, ["--json", "--qr", "none", "--email", ALICE])
        .fail_json(5, "conflict");
    env.run(ENABLE, ["--qr", "none", "--email", ALICE])
        .fail_line(5, ENABLE, "--force");
    assert_eq!(
        env.accounts(),
        before,
        "a refused enable changed an account"
    );
    assert_eq!(env.account(ALICE)["state"], "active");

    let second = env.enroll_with(ALICE, &["--force"]);
    assert_eq!(second.doc["replaced"], "active");
    assert_ne!(first.secret, second.secret);
    let a = env.account(ALICE);
    assert_eq!(a["state"], "pending");
    assert_eq!(a["backup_codes_left"], 10);
    // The old phone and the old backup codes stop working.
    let old = totp_now(&first.secret, 1);
    if old != totp_now(&second.secret, 1) {
        env.verify_json(ALICE, &old).fail_json(1, "rejected");
    }
    env.activate(&second);
    env.verify_json(ALICE, &first.backup_codes[0])
        .fail_json(1, "rejected");
}

#[test]
fn emails_are_trimmed_and_lower_cased() {
    let env = Env::new();
    let e = env.enroll("  Alice@Example.COM ");
    assert_eq!(e.email, ALICE);
    let code = totp_now(&e.secret, 0);
    let v = env.verify_json("ALICE@example.com", &code).ok_json();
    assert_eq!(v["email"], ALICE);
    assert_eq!(env.accounts().len(), 1);
    env.run(DISABLE, ["--json", "--yes", "--email", "Alice@EXAMPLE.com"])
        .ok_json();
    assert!(env.accounts().is_empty());
}

#[test]
fn accounts_are_independent() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    let bob = env.enroll("bob@example.com");
    env.activate(&alice);
    // Alice's backup code is not Bob's.
    env.activate(&bob);
    env.verify_json("bob@example.com", &alice.backup_codes[0])
        .fail_json(1, "rejected");
    env.run(DISABLE, ["--yes", "--email", ALICE]).expect_code(0);
    let left: Vec<Value> = env.accounts();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["email"], "bob@example.com");
    assert_eq!(left[0]["state"], "active");
}

#[test]
fn disable_with_a_code_requires_a_valid_code() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let wrong = wrong_code(&e.secret);
    let run = env.run(
        DISABLE,
        ["--json", "--yes", "--email", ALICE, "--code", &wrong],
    );
    run.fail_json(1, "rejected");
    run.assert_not_echoed(&wrong);
    assert_eq!(env.accounts().len(), 1, "a wrong code disabled 2FA");

    let run = env.run(
        DISABLE,
        [
            "--json",
            "--yes",
            "--email",
            ALICE,
            "--code",
            &totp_now(&e.secret, 1),
        ],
    );
    let doc = run.ok_json();
    assert_eq!(doc["email"], ALICE, "{run}");
    assert_eq!(doc["disabled"], true, "{run}");
    assert!(env.accounts().is_empty());
}

#[test]
fn disable_with_a_backup_code() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    env.run(
        DISABLE,
        [
            "--json",
            "--yes",
            "--email",
            ALICE,
            "--code",
            &e.backup_codes[4],
        ],
    )
    .ok_json();
    assert!(env.accounts().is_empty());
}

#[test]
fn disable_without_a_terminal_needs_yes() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let before = env.snapshot();
    env.run(DISABLE, ["--email", ALICE])
        .fail_line(2, DISABLE, "--yes");
    env.run(DISABLE, ["--json", "--email", ALICE])
        .fail_json(2, "usage");
    assert_eq!(
        env.snapshot(),
        before,
        "disable without --yes changed the database"
    );
    assert_eq!(env.accounts().len(), 1);
}

#[test]
fn not_enrolled_accounts_exit_3() {
    let env = Env::new();
    env.enroll(ALICE);
    let bob = "bob@example.com";
    env.run(VERIFY, ["--email", bob, "--code", "123456"])
        .fail_line(3, VERIFY, bob);
    env.run(DISABLE, ["--yes", "--email", bob])
        .fail_line(3, DISABLE, bob);
    env.run(BACKUP_CODES, ["--email", bob])
        .fail_line(3, BACKUP_CODES, bob);
    env.run(
        VERIFY,
        ["--json", "--email", bob, "--code", "ABCD-EFGH-JKMN"],
    )
    .fail_json(3, "not_enrolled");
}

#[test]
fn regenerated_codes_work_while_pending_only_after_activation() {
    // Regenerating keeps the enrollment's state; the new codes follow the
    // same rule as the old ones (refused while pending).
    let env = Env::new();
    let e = env.enroll(ALICE);
    let doc = env
        .run(BACKUP_CODES, ["--json", "--email", ALICE])
        .ok_json();
    let fresh = doc["backup_codes"][0].as_str().expect("code").to_string();
    assert_eq!(env.account(ALICE)["state"], "pending");
    env.verify_json(ALICE, &fresh).fail_json(1, "rejected");
    env.activate(&e);
    env.verify_json(ALICE, &fresh).ok_json();
}

#[test]
fn five_failures_lock_the_account() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let wrong = wrong_code(&e.secret);
    for _ in 0..5 {
        env.verify_json(ALICE, &wrong).fail_json(1, "rejected");
    }
    // Locked now, even for the right code.
    env.verify_json(ALICE, &totp_now(&e.secret, 1))
        .fail_json(4, "locked");
    env.run(VERIFY, ["--email", ALICE, "--code", &wrong])
        .fail_line(4, VERIFY, "");
    let until = env.account(ALICE)["locked_until"]
        .as_str()
        .and_then(parse_rfc3339_utc)
        .expect("locked_until is an RFC 3339 time");
    let now = now_unix() as i64;
    assert!(
        (now + 1..=now + 3600).contains(&until),
        "locked_until {until}, now {now}"
    );
}
