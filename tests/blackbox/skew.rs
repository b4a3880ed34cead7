//! Clock skew: a phone whose clock is off is diagnosed in plain words and can
//! be re-synchronised with two consecutive codes. Codes come from oathtool
//! with `--now` (the skewed "phone"), never from the product.

use mb2fa_testkit::{Env, LIST, VERIFY, in_one_step, now_unix, oathtool_at, wrong_code};

const ALICE: &str = "alice@example.com";

/// The code a phone whose clock is `behind` seconds slow shows right now.
fn phone(secret: &str, behind: u64) -> String {
    oathtool_at(secret, now_unix() - behind, 6)
}

#[test]
fn a_phone_90_s_behind_is_rejected_diagnosed_and_resynced() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let code = phone(&e.secret, 90);
    env.verify_json(ALICE, &code).fail_json(1, "rejected");

    let before = env.accounts();
    let d = env
        .run(
            VERIFY,
            ["--json", "--diagnose", "--email", ALICE, "--code", &code],
        )
        .ok_json();
    assert_eq!(d["finding"], "phone_behind", "{d}");
    let seconds = d["offset_seconds"].as_i64().expect("offset_seconds");
    assert!(
        (-120..=-60).contains(&seconds),
        "about 90 s behind, got {seconds}"
    );
    assert_eq!(d["would_accept"], false);
    assert!(
        ["yes", "no", "unknown"].contains(&d["ntp_synchronized"].as_str().expect("ntp")),
        "{d}"
    );
    assert!(d["server_time"].as_str().expect("time").ends_with('Z'));
    let advice = d["advice"].as_str().expect("advice");
    assert!(advice.contains("s behind"), "{advice}");
    assert!(advice.contains("automatic date & time"), "{advice}");
    let human = env.run(VERIFY, ["--diagnose", "--email", ALICE, "--code", &code]);
    assert_eq!(human.code, 0, "{human}");
    assert!(
        human.stdout.contains("nothing accepted or spent"),
        "{human}"
    );
    assert!(human.stdout.contains(" s behind"), "{human}");
    assert_eq!(env.accounts(), before, "diagnose changed an account");

    // The resync and the code after it in one step, on a fresh enrollment
    // each round: a step boundary between computing the phone's codes and
    // the tool reading its clock would shift the drift it learns by one.
    let (r, listed, v) = in_one_step(|| {
        let env = Env::new();
        let e = env.enroll(ALICE);
        let t = now_unix();
        let r = env.run(
            VERIFY,
            [
                "--json",
                "--email",
                ALICE,
                "--resync",
                &oathtool_at(&e.secret, t - 90, 6),
                &oathtool_at(&e.secret, t - 60, 6),
            ],
        );
        let listed = env.account(ALICE)["drift_steps"].clone();
        // The phone's next code verifies normally.
        let v = env.verify_json(ALICE, &oathtool_at(&e.secret, t - 30, 6));
        (r, listed, v)
    });
    let r = r.ok_json();
    assert_eq!(r["resynced"], true);
    assert_eq!(r["activated"], true);
    let drift = r["drift_steps"].as_i64().expect("drift");
    assert_eq!(drift, -2, "a phone 90 s behind is two steps behind");
    assert_eq!(listed, drift);
    assert_eq!(v.ok_json()["method"], "totp");
}

#[test]
fn a_phone_5_min_behind_verifies_only_after_a_resync() {
    // Without a resync, the phone's codes are refused.
    let plain = Env::new();
    let p = plain.enroll(ALICE);
    plain
        .verify_json(ALICE, &phone(&p.secret, 240))
        .fail_json(1, "rejected");

    // In one step, on a fresh enrollment each round (as above).
    let (resync, account, v, list) = in_one_step(|| {
        let env = Env::new();
        let e = env.enroll(ALICE);
        let t = now_unix();
        let resync = env.run(
            VERIFY,
            [
                "--email",
                ALICE,
                "--resync",
                &oathtool_at(&e.secret, t - 300, 6),
                &oathtool_at(&e.secret, t - 270, 6),
            ],
        );
        let account = env.account(ALICE);
        let v = env.verify_json(ALICE, &oathtool_at(&e.secret, t - 240, 6));
        let list = env.run(LIST, Vec::<&str>::new());
        (resync, account, v, list)
    });
    resync.expect_code(0);
    let drift = account["drift_steps"].as_i64().expect("drift");
    assert_eq!(drift, -9, "a phone 270 s behind is nine steps behind");
    assert_eq!(account["state"], "active");
    v.ok_json();
    assert!(list.stdout.contains(&format!("{drift:+}")), "{list}");
}

#[test]
fn resync_refuses_codes_that_are_not_consecutive() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let before = env.account(ALICE);
    env.run(
        VERIFY,
        [
            "--json",
            "--email",
            ALICE,
            "--resync",
            &phone(&e.secret, 300),
            &phone(&e.secret, 240),
        ],
    )
    .fail_json(1, "rejected");
    let after = env.account(ALICE);
    assert_eq!(after["drift_steps"], before["drift_steps"]);
    assert_eq!(after["state"], "pending");
    assert_eq!(
        after["failed_attempts"], 1,
        "a failed resync counts as a wrong code"
    );
    // Backup codes and malformed codes are usage errors.
    env.run(
        VERIFY,
        ["--email", ALICE, "--resync", &e.backup_codes[0], "123456"],
    )
    .fail_line(2, VERIFY, "malformed code");
    env.run(VERIFY, ["--email", ALICE, "--resync", "12345", "123456"])
        .fail_line(2, VERIFY, "malformed code");
}

#[test]
fn diagnose_tells_replays_and_wrong_accounts_counts_wrong_codes_and_respects_the_lock() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let now_code = phone(&e.secret, 0);
    env.verify_json(ALICE, &now_code).ok_json();
    let before = env.accounts();

    let d = env
        .run(
            VERIFY,
            [
                "--json",
                "--diagnose",
                "--email",
                ALICE,
                "--code",
                &now_code,
            ],
        )
        .ok_json();
    assert_eq!(d["finding"], "already_used", "{d}");
    assert!(
        d["advice"]
            .as_str()
            .expect("advice")
            .contains("already used")
    );

    assert_eq!(
        env.accounts(),
        before,
        "a spent code is no guess: nothing counted"
    );

    // A code of another enrollment (the wrong account in the app): said,
    // and counted as a wrong code (issue 12 item 2: no unthrottled oracle).
    let other = Env::new().enroll("bob@example.com");
    let diagnose = |code: &str, minutes: &str| {
        env.run(
            VERIFY,
            [
                "--json",
                "--diagnose",
                "--diagnose-minutes",
                minutes,
                "--email",
                ALICE,
                "--code",
                code,
            ],
        )
    };
    let d = diagnose(&phone(&other.secret, 0), "10").ok_json();
    assert_eq!(d["finding"], "no_match", "{d}");
    let advice = d["advice"].as_str().expect("advice");
    assert!(advice.contains("matches nowhere"), "{advice}");
    assert!(advice.contains("wrong account"), "{advice}");
    assert!(advice.contains("counted as a wrong code"), "{advice}");
    assert_eq!(d["failed_attempts"], 1, "{d}");

    // A code of the future beyond the window is never revealed, however
    // far the search reaches: 25 steps ahead with a 120-minute search.
    let d = diagnose(&oathtool_at(&e.secret, now_unix() + 25 * 30, 6), "120").ok_json();
    assert_eq!(d["finding"], "no_match", "{d}");
    assert_eq!(d["would_accept"], false, "{d}");
    assert_eq!(env.account(ALICE)["failed_attempts"], 2);

    // Wrong codes diagnosed lock the account like wrong codes verified...
    let wrong = wrong_code(&e.secret);
    for _ in 0..3 {
        diagnose(&wrong, "10").ok_json();
    }
    assert_ne!(env.account(ALICE)["locked_until"], serde_json::Value::Null);
    // ...and while locked, nothing is evaluated: not even the right code.
    let next = oathtool_at(&e.secret, now_unix() + 30, 6);
    let run = diagnose(&next, "10");
    assert!(run.fail_json(4, "locked").contains("locked until"), "{run}");
    let records = env.audit(["--email", ALICE]);
    assert_eq!(records[0]["outcome"], "locked", "{records:#?}");

    // Unlocked, a valid code diagnosed stays valid.
    env.run(mb2fa_testkit::UNLOCK, ["--json", "--email", ALICE])
        .ok_json();
    let d = diagnose(&next, "10").ok_json();
    assert_eq!(d["would_accept"], true, "{d}");
    env.verify_json(ALICE, &next).ok_json();
}

#[test]
fn a_phone_back_on_time_gets_no_clock_note() {
    // Each round's codes are computed and checked in one 30 s step.
    let (resync, drift, fixed) = in_one_step(|| {
        let env = Env::new();
        let e = env.enroll(ALICE);
        let resync = env.run(
            VERIFY,
            [
                "--email",
                ALICE,
                "--resync",
                &phone(&e.secret, 60),
                &phone(&e.secret, 30),
            ],
        );
        let drift = env.account(ALICE)["drift_steps"].clone();
        // The phone's clock was fixed: its code matches the server's own step.
        let fixed = env.run(VERIFY, ["--email", ALICE, "--code", &phone(&e.secret, 0)]);
        (resync, drift, fixed)
    });
    resync.expect_code(0);
    assert_eq!(drift, -1);
    fixed.expect_code(0);
    assert!(fixed.stdout.contains("Code accepted"), "{fixed}");
    assert!(!fixed.stdout.contains("Note:"), "{fixed}");
    // A phone one step ahead is still worth a word.
    let run = in_one_step(|| {
        let env2 = Env::new();
        let e2 = env2.enroll(ALICE);
        env2.run(
            VERIFY,
            [
                "--email",
                ALICE,
                "--code",
                &oathtool_at(&e2.secret, now_unix() + 30, 6),
            ],
        )
    });
    run.expect_code(0);
    assert!(
        run.stdout.contains("30 s ahead of the server clock"),
        "{run}"
    );
}
