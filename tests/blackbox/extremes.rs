//! Out-of-range stored times (issue 12, item 7): a value a database writer
//! planted never makes a tool panic or abort, the login path included.

use mb2fa_tests::{Env, LIST, UNLOCK, totp_now};

#[test]
fn a_lock_in_the_far_future_does_not_abort_verify_unlock_or_list() {
    let env = Env::new();
    let e = env.enroll("alice@example.com");
    env.activate(&e);
    env.connect()
        .execute(
            "UPDATE accounts SET locked_until = 300000000000, failed_attempts = 9 WHERE email = ?1",
            ["alice@example.com"],
        )
        .expect("plant");
    // Still locked: refused with exit 4, not a panic (101) or an abort (134).
    let run = env.verify_json(&e.email, &totp_now(&e.secret, 1));
    run.expect_code(4);
    assert!(run.json()["error"]["message"].as_str().is_some(), "{run}");
    env.run(LIST, ["--json"]).ok_json();
    env.run(LIST, Vec::<&str>::new()).expect_code(0);
    env.run(UNLOCK, ["--json", "--email", "alice@example.com"])
        .ok_json();
}
