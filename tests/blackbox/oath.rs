//! Codes from `oathtool --totp -b SECRET`, the reference many admins have at
//! hand, are accepted (the oathtool helper's fallback policy is in lib.rs).

use mb2fa_testkit::{Env, OtpauthUri, decode_secret, now_unix, oathtool, oathtool_at, totp_at};

const ALICE: &str = "alice@example.com";

#[test]
fn oathtool_codes_are_accepted() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let run = env.verify_json(ALICE, &oathtool(&e.secret, 0));
    assert_eq!(run.ok_json()["activated"], true, "{run}");
    // The next step, as a phone slightly ahead would show it.
    let run = env.verify_json(ALICE, &oathtool(&e.secret, 1));
    assert_eq!(run.ok_json()["method"], "totp", "{run}");
}

#[test]
fn oathtool_accepts_the_secret_from_the_uri() {
    // The secret in the URI (what a phone scans) is the one in --json, and
    // oathtool and the reference agree on it at several instants.
    let env = Env::new();
    let e = env.enroll(ALICE);
    let from_uri = OtpauthUri::parse(&e.uri)
        .param("secret")
        .expect("secret")
        .to_string();
    assert_eq!(from_uri, e.secret);
    let key = decode_secret(&e.secret);
    let now = now_unix();
    for t in [now, now + 30, 59, 1_111_111_109, 2_000_000_000] {
        assert_eq!(oathtool_at(&e.secret, t, 6), totp_at(&key, t, 6), "t = {t}");
    }
    let run = env.verify_json(ALICE, &oathtool(&from_uri, 0));
    run.ok_json();
}

#[test]
fn a_code_from_far_away_steps_is_rejected() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    // Five minutes ahead: outside the ±1 step window.
    let code = oathtool(&e.secret, 10);
    let near: Vec<String> = (-2..=2).map(|o| oathtool(&e.secret, o)).collect();
    if !near.contains(&code) {
        env.verify_json(ALICE, &code).fail_json(1, "rejected");
    }
}
