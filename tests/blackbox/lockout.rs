//! Lockout: 5 consecutive wrong codes (TOTP and backup codes alike) lock the
//! account for 30 s, doubling with each further failure; a locked attempt is
//! exit 4 and says until when; a success resets the count; replays and spent
//! backup codes are not guesses; `mb-2fa-unlock` clears a lock. The count
//! lives in the database, so it holds across processes and races.

use std::io::Write;

use mb2fa_testkit::{
    DISABLE, Env, LIST, Run, UNLOCK, VERIFY, finish, now_unix, parse_rfc3339_utc,
    previous_step_code, spawn, totp_now, wrong_codes,
};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// A wrong backup code of the right shape.
const WRONG_BACKUP: &str = "AAAA-BBBB-CCCC";

/// Enroll and activate with the previous step's code, so the current and
/// next steps are still fresh for the test. Returns the secret and backup codes.
#[track_caller]
fn active(env: &Env, email: &str) -> (String, Vec<String>) {
    let e = env.enroll(email);
    let run = env.verify_json(email, &previous_step_code(&e.secret));
    assert_eq!(run.ok_json()["activated"], true, "{run}");
    (e.secret, e.backup_codes)
}

/// `failed_attempts` and `locked_until` (Unix seconds) from `mb-2fa-list --json`.
#[track_caller]
fn lock_state(env: &Env, email: &str) -> (i64, Option<i64>) {
    let a = env.account(email);
    let failed = a["failed_attempts"]
        .as_i64()
        .unwrap_or_else(|| panic!("failed_attempts is not an integer: {a}"));
    let until = match &a["locked_until"] {
        Value::Null => None,
        Value::String(s) => Some(
            parse_rfc3339_utc(s).unwrap_or_else(|| panic!("locked_until is not RFC 3339: {a}")),
        ),
        other => panic!("locked_until is neither null nor a string: {other}"),
    };
    (failed, until)
}

/// A rejection (exit 1, kind rejected) that does not mention a lock.
#[track_caller]
fn rejected_unlocked(run: &Run) {
    let message = run.fail_json(1, "rejected");
    assert!(
        !message.contains("locked"),
        "this failure must not lock yet\n{run}"
    );
}

/// Five wrong codes: four plain rejections, then the fifth says the account
/// is now locked. Returns the fifth message.
#[track_caller]
fn five_failures(env: &Env, email: &str, codes: &[String]) -> String {
    assert_eq!(codes.len(), 5);
    for c in &codes[..4] {
        rejected_unlocked(&env.verify_json(email, c));
    }
    let run = env.verify_json(email, &codes[4]);
    let message = run.fail_json(1, "rejected");
    assert!(
        message.contains("now locked until"),
        "the fifth failure must say the account is now locked\n{run}"
    );
    message
}

#[test]
fn fifth_failure_locks_and_the_right_code_then_gets_exit_4() {
    let env = Env::new();
    let (secret, _) = active(&env, ALICE);
    let wrong = wrong_codes(&secret, 5);
    for (i, c) in wrong[..4].iter().enumerate() {
        rejected_unlocked(&env.verify_json(ALICE, c));
        assert_eq!(lock_state(&env, ALICE), (i as i64 + 1, None));
    }
    let started = now_unix() as i64;
    let fifth = env.verify_json(ALICE, &wrong[4]);
    let message = fifth.fail_json(1, "rejected");
    assert!(message.contains("now locked until"), "{fifth}");

    let (failed, until) = lock_state(&env, ALICE);
    assert_eq!(failed, 5);
    let until = until.expect("locked_until is set after 5 failures");
    assert!(
        (started + 29..=now_unix() as i64 + 31).contains(&until),
        "the first lock is 30 s: locked_until {until}, started {started}"
    );
    let until_text = env.account(ALICE)["locked_until"]
        .as_str()
        .expect("string")
        .to_string();
    assert!(
        message.contains(&until_text),
        "{fifth}\nlocked_until {until_text}"
    );

    // Locked: the right code, the next code and another wrong code alike.
    for code in [
        totp_now(&secret, 0),
        totp_now(&secret, 1),
        wrong_codes(&secret, 6)[5].clone(),
    ] {
        let run = env.verify_json(ALICE, &code);
        let message = run.fail_json(4, "locked");
        assert!(
            message.contains(&until_text),
            "the message names the time\n{run}"
        );
        run.assert_not_echoed(&code);
    }
    // Human mode: one line on stderr with the time.
    let run = env.run(VERIFY, ["--email", ALICE, "--code", &totp_now(&secret, 0)]);
    let line = run.fail_line(4, VERIFY, "locked until");
    assert!(line.contains(&until_text), "{run}");
    // Attempts while locked are not counted, and the lock is not extended.
    assert_eq!(lock_state(&env, ALICE), (5, Some(until)));
    // The self-service removal is locked as well.
    let run = env.run(
        DISABLE,
        [
            "--json",
            "--yes",
            "--email",
            ALICE,
            "--code",
            &totp_now(&secret, 0),
        ],
    );
    run.fail_json(4, "locked");
    assert_eq!(env.accounts().len(), 1, "a locked account was removed");
}

#[test]
fn the_lock_is_per_account() {
    let env = Env::new();
    let (alice, _) = active(&env, ALICE);
    let (bob, _) = active(&env, BOB);
    five_failures(&env, ALICE, &wrong_codes(&alice, 5));
    env.verify_json(ALICE, &totp_now(&alice, 0))
        .fail_json(4, "locked");
    env.verify_json(BOB, &totp_now(&bob, 0)).ok_json();
    assert_eq!(lock_state(&env, BOB), (0, None));
}

#[test]
fn wrong_backup_codes_count_like_wrong_totp_codes() {
    let env = Env::new();
    let (secret, backup) = active(&env, ALICE);
    // Only backup codes: the literal one of the brief, and other misses in
    // every accepted spelling.
    let guesses: Vec<String> = vec![
        WRONG_BACKUP.to_string(),
        WRONG_BACKUP.to_string(),
        "aaaa-bbbb-cccd".to_string(),
        "AAAABBBBCCCE".to_string(),
        "ZZZZ-ZZZZ-ZZZZ".to_string(),
    ];
    five_failures(&env, ALICE, &guesses);
    assert_eq!(lock_state(&env, ALICE).0, 5);
    // A right backup code is refused while locked, and not spent.
    env.verify_json(ALICE, &backup[0]).fail_json(4, "locked");
    assert_eq!(env.account(ALICE)["backup_codes_left"], 10);
    env.run(UNLOCK, ["--json", "--email", ALICE]).ok_json();
    let doc = env.verify_json(ALICE, &backup[0]).ok_json();
    assert_eq!(doc["method"], "backup_code");
    assert_eq!(doc["backup_codes_left"], 9);

    // Mixed: TOTP and backup-code failures add up to one count.
    let wrong = wrong_codes(&secret, 3);
    let mixed = vec![
        wrong[0].clone(),
        WRONG_BACKUP.to_string(),
        wrong[1].clone(),
        "QQQQ-QQQQ-QQQQ".to_string(),
        wrong[2].clone(),
    ];
    five_failures(&env, ALICE, &mixed);
    env.verify_json(ALICE, &totp_now(&secret, 0))
        .fail_json(4, "locked");
}

#[test]
fn replays_and_spent_backup_codes_are_not_counted() {
    let env = Env::new();
    let (secret, backup) = active(&env, ALICE);
    let code = totp_now(&secret, 0);
    env.verify_json(ALICE, &code).ok_json();
    env.verify_json(ALICE, &backup[0]).ok_json();
    for _ in 0..7 {
        env.verify_json(ALICE, &code).fail_json(1, "rejected");
        // An earlier step than the accepted one is a replay too.
        env.verify_json(ALICE, &totp_now(&secret, -1))
            .fail_json(1, "rejected");
        env.verify_json(ALICE, &backup[0]).fail_json(1, "rejected");
    }
    assert_eq!(lock_state(&env, ALICE), (0, None));
    // Still not locked: the next step works.
    env.verify_json(ALICE, &totp_now(&secret, 1)).ok_json();
}

#[test]
fn a_success_resets_the_count() {
    let env = Env::new();
    let (secret, backup) = active(&env, ALICE);
    let wrong = wrong_codes(&secret, 8);
    for c in &wrong[..4] {
        rejected_unlocked(&env.verify_json(ALICE, c));
    }
    assert_eq!(lock_state(&env, ALICE).0, 4);
    env.verify_json(ALICE, &totp_now(&secret, 0)).ok_json();
    assert_eq!(lock_state(&env, ALICE), (0, None));
    // Four more: still not locked (the count started again).
    for c in &wrong[4..8] {
        rejected_unlocked(&env.verify_json(ALICE, c));
    }
    assert_eq!(lock_state(&env, ALICE), (4, None));
    // A backup code resets it as well.
    env.verify_json(ALICE, &backup[1]).ok_json();
    assert_eq!(lock_state(&env, ALICE), (0, None));
    rejected_unlocked(&env.verify_json(ALICE, &wrong[0]));
    assert_eq!(lock_state(&env, ALICE), (1, None));
}

#[test]
fn list_shows_the_lockout() {
    let env = Env::new();
    let (secret, _) = active(&env, ALICE);
    let a = env.account(ALICE);
    assert_eq!(a["failed_attempts"], 0, "{a}");
    assert_eq!(a["locked_until"], Value::Null, "{a}");
    let wrong = wrong_codes(&secret, 5);
    for (i, c) in wrong[..4].iter().enumerate() {
        rejected_unlocked(&env.verify_json(ALICE, c));
        let a = env.account(ALICE);
        assert_eq!(a["failed_attempts"], i + 1, "{a}");
        assert_eq!(a["locked_until"], Value::Null, "{a}");
    }
    let before = now_unix() as i64;
    env.verify_json(ALICE, &wrong[4]).fail_json(1, "rejected");
    let after = now_unix() as i64;
    let a = env.account(ALICE);
    assert_eq!(a["failed_attempts"], 5, "{a}");
    let until = a["locked_until"].as_str().expect("locked_until string");
    assert!(until.ends_with('Z'), "UTC: {a}");
    let until = parse_rfc3339_utc(until).expect("RFC 3339");
    assert!(
        (before + 30..=after + 30).contains(&until),
        "a 30 s lock: {a}"
    );
    // The human table shows it too.
    let run = env.run(LIST, Vec::<&str>::new());
    run.expect_code(0);
    assert!(run.stdout.to_uppercase().contains("LOCKED"), "{run}");
}

#[test]
fn unlock_clears_a_lock_and_the_right_code_works() {
    let env = Env::new();
    let (secret, _) = active(&env, ALICE);
    five_failures(&env, ALICE, &wrong_codes(&secret, 5));
    let (_, until) = lock_state(&env, ALICE);
    let until = until.expect("locked");

    let run = env.run(UNLOCK, ["--json", "--email", ALICE]);
    let doc = run.ok_json();
    assert_eq!(doc["email"], ALICE, "{run}");
    assert_eq!(doc["unlocked"], true, "{run}");
    assert_eq!(doc["was_locked"], true, "{run}");
    assert_eq!(doc["failed_attempts"], 5, "{run}");
    let shown = doc["locked_until"].as_str().expect("locked_until string");
    assert_eq!(parse_rfc3339_utc(shown), Some(until), "{run}");

    assert_eq!(lock_state(&env, ALICE), (0, None));
    env.verify_json(ALICE, &totp_now(&secret, 0)).ok_json();

    // Unlocking an account that is not locked is fine, and says so.
    let doc = env.run(UNLOCK, ["--json", "--email", ALICE]).ok_json();
    assert_eq!(doc["was_locked"], false);
    assert_eq!(doc["failed_attempts"], 0);
    assert_eq!(doc["locked_until"], Value::Null);
    // It also clears a count below the threshold.
    rejected_unlocked(&env.verify_json(ALICE, &wrong_codes(&secret, 1)[0]));
    let doc = env
        .run(UNLOCK, ["--json", "--email", " Alice@Example.COM "])
        .ok_json();
    assert_eq!(doc["email"], ALICE);
    assert_eq!(doc["was_locked"], false);
    assert_eq!(doc["failed_attempts"], 1);
    assert_eq!(lock_state(&env, ALICE), (0, None));

    // Human mode.
    five_failures(&env, ALICE, &wrong_codes(&secret, 5));
    let run = env.run(UNLOCK, ["--email", ALICE]);
    run.expect_code(0);
    assert!(run.stdout.contains(ALICE), "{run}");
    assert!(run.stdout.contains("unlocked"), "{run}");
    env.verify_json(ALICE, &totp_now(&secret, 1)).ok_json();
}

#[test]
fn unlock_errors() {
    let env = Env::new();
    // No database: exit 10, and none is created.
    env.run(UNLOCK, ["--json", "--email", ALICE])
        .fail_json(10, "storage");
    assert!(!env.db.exists());
    active(&env, ALICE);
    let run = env.run(UNLOCK, ["--json", "--email", BOB]);
    run.fail_json(3, "not_enrolled");
    env.run(UNLOCK, ["--email", BOB]).fail_line(3, UNLOCK, BOB);
    env.run(UNLOCK, ["--json", "--email", "not an email"])
        .fail_json(2, "usage");
    env.run(UNLOCK, ["--json"]).fail_json(2, "usage");
}

#[test]
fn sixteen_processes_guessing_at_once_lock_the_account() {
    const N: usize = 16;
    let env = Env::new();
    let (secret, _) = active(&env, ALICE);
    let codes = wrong_codes(&secret, N);
    // Every process is started first and waits for its code on stdin; then
    // all get their (different) codes at once.
    let children: Vec<_> = codes
        .iter()
        .map(|_| {
            let mut cmd = env.command(VERIFY, ["--json", "--email", ALICE, "--code", "-"]);
            let cmdline = format!("{cmd:?}");
            (spawn(&mut cmd, true), cmdline)
        })
        .collect();
    let children: Vec<_> = children
        .into_iter()
        .zip(&codes)
        .map(|((mut child, cmdline), code)| {
            let mut stdin = child.stdin.take().expect("stdin pipe");
            stdin
                .write_all(format!("{code}\n").as_bytes())
                .expect("write the code");
            (child, cmdline)
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|(child, cmdline)| finish(child, cmdline))
        .collect();
    let report: String = runs.iter().map(|r| format!("{r}\n")).collect();
    assert!(
        runs.iter().all(|r| r.code == 1 || r.code == 4),
        "every guess must be rejected (1) or refused as locked (4), never 0 or 10:\n{report}"
    );
    let rejected = runs.iter().filter(|r| r.code == 1).count();
    let locked = runs.iter().filter(|r| r.code == 4).count();
    for r in &runs {
        if r.code == 1 {
            r.fail_json(1, "rejected");
        } else {
            r.fail_json(4, "locked");
        }
    }
    let (failed, until) = lock_state(&env, ALICE);
    assert!(until.is_some(), "the account must end up locked:\n{report}");
    assert!(
        (5..=10).contains(&failed),
        "failed_attempts {failed}: at most 5 failures beyond the threshold:\n{report}"
    );
    // Every counted failure was a process told `rejected`, and the others were
    // refused without being evaluated.
    assert_eq!(rejected as i64, failed, "{report}");
    assert_eq!(rejected + locked, N);
    let locking = runs
        .iter()
        .filter(|r| {
            r.code == 1
                && r.json()["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("now locked until"))
        })
        .count();
    assert!(
        locking >= 1,
        "one reply must say the account is now locked:\n{report}"
    );
    // And the right code is refused.
    env.verify_json(ALICE, &totp_now(&secret, 0))
        .fail_json(4, "locked");
}

/// Two accounts are locked at once; then both locks run out (aged in the
/// database by the time it would take, not waited for): alice's right code
/// works and resets her count; bob's next wrong code locks him again, for
/// twice as long.
#[test]
fn after_the_lock_runs_out_the_right_code_works_and_the_next_lock_doubles() {
    let env = Env::new();
    let (alice, _) = active(&env, ALICE);
    let (bob, _) = active(&env, BOB);
    five_failures(&env, ALICE, &wrong_codes(&alice, 5));
    five_failures(&env, BOB, &wrong_codes(&bob, 5));
    let (_, alice_until) = lock_state(&env, ALICE);
    let alice_until = alice_until.expect("locked");
    env.verify_json(ALICE, &totp_now(&alice, 0))
        .fail_json(4, "locked");

    // Until both locks have run out (a second of margin): that much earlier
    // is where the rule (locked while locked_until > now) finds them.
    let (_, bob_until) = lock_state(&env, BOB);
    let end = alice_until.max(bob_until.expect("locked")) + 1;
    let wait = end - now_unix() as i64;
    assert!(
        wait <= 32,
        "the first lock must be about 30 s, not {wait} s"
    );
    let conn = env.connect();
    let aged = conn
        .execute(
            "UPDATE accounts SET locked_until = locked_until - ?1 WHERE email IN (?2, ?3)",
            rusqlite::params![wait.max(0), ALICE, BOB],
        )
        .expect("age the locks");
    assert_eq!(aged, 2);
    let alice_until: i64 = conn
        .query_row(
            "SELECT locked_until FROM accounts WHERE email = ?1",
            [ALICE],
            |r| r.get(0),
        )
        .expect("locked_until");
    drop(conn);
    assert!(now_unix() as i64 > alice_until);

    // list no longer shows the lock, though the count stays until a success.
    let a = env.account(ALICE);
    assert_eq!(a["locked_until"], Value::Null, "{a}");
    assert_eq!(a["failed_attempts"], 5, "{a}");

    // The lock is over: the code of now is good.
    let run = env.verify_json(ALICE, &totp_now(&alice, 0));
    run.ok_json();
    assert_eq!(lock_state(&env, ALICE), (0, None));

    let before = now_unix() as i64;
    let run = env.verify_json(BOB, &wrong_codes(&bob, 1)[0]);
    let message = run.fail_json(1, "rejected");
    assert!(message.contains("now locked until"), "{run}");
    let (failed, until) = lock_state(&env, BOB);
    assert_eq!(failed, 6);
    let until = until.expect("locked again");
    let after = now_unix() as i64;
    assert!(
        (before + 60..=after + 60).contains(&until),
        "the second lock is 60 s: until {until}, between {before} and {after}"
    );
    env.verify_json(BOB, &totp_now(&bob, 0))
        .fail_json(4, "locked");
}

/// Every mode that evaluates a code has the lockout's say (issue 12 item
/// 2): wrong codes through `--resync` and `disable --code` count, and while
/// locked `--resync` and `--diagnose` evaluate nothing.
#[test]
fn resync_disable_and_diagnose_count_wrong_codes_and_respect_the_lock() {
    let env = Env::new();
    let (secret, _) = active(&env, ALICE);
    let wrong = wrong_codes(&secret, 6);
    let run = env.run(
        VERIFY,
        ["--json", "--email", ALICE, "--resync", &wrong[0], &wrong[1]],
    );
    run.fail_json(1, "rejected");
    assert_eq!(
        lock_state(&env, ALICE).0,
        1,
        "a failed resync counts\n{run}"
    );
    let run = env.run(
        DISABLE,
        ["--json", "--yes", "--email", ALICE, "--code", &wrong[2]],
    );
    run.fail_json(1, "rejected");
    assert_eq!(lock_state(&env, ALICE).0, 2, "{run}");
    let run = env.run(
        VERIFY,
        [
            "--json",
            "--diagnose",
            "--email",
            ALICE,
            "--code",
            &wrong[3],
        ],
    );
    run.ok_json();
    assert_eq!(lock_state(&env, ALICE).0, 3, "{run}");
    env.verify_json(ALICE, &wrong[4]).fail_json(1, "rejected");
    env.verify_json(ALICE, &wrong[5]).fail_json(1, "rejected");
    let locked = lock_state(&env, ALICE);
    assert!(locked.1.is_some(), "locked after 5");
    let good = [totp_now(&secret, 0), totp_now(&secret, 1)];
    let run = env.run(
        VERIFY,
        ["--json", "--email", ALICE, "--resync", &good[0], &good[1]],
    );
    run.fail_json(4, "locked");
    let run = env.run(
        VERIFY,
        ["--json", "--diagnose", "--email", ALICE, "--code", &good[0]],
    );
    run.fail_json(4, "locked");
    assert_eq!(
        lock_state(&env, ALICE),
        locked,
        "attempts while locked changed the lock"
    );
}
