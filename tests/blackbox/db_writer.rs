//! A database writer who cannot read the key (issue 12, item 1): whatever
//! they do to the rows, no tool re-seals a secret, learns a planted one, or
//! answers "not enrolled". A row that does not open under the key is exit 10
//! for that account; the others keep working.

use mb2fa_testkit::{Env, oathtool};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn two_active(env: &Env) -> (mb2fa_testkit::Enrolled, mb2fa_testkit::Enrolled) {
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    let bob = env.enroll(BOB);
    env.activate(&bob);
    (alice, bob)
}

fn base32(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

#[test]
fn deleting_the_key_record_seals_nothing_and_fails_closed() {
    let env = Env::new();
    let (alice, bob) = two_active(&env);
    let blob = env.stored_secret(ALICE);
    let conn = env.connect();
    let fingerprint: String = conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'key_fingerprint'",
            [],
            |r| r.get(0),
        )
        .expect("a recorded fingerprint");
    conn.execute("DELETE FROM settings WHERE key = 'key_fingerprint'", [])
        .expect("delete");
    drop(conn);
    let before = env.snapshot();
    // The attack: treat alice's sealed blob as if it were her secret.
    let forged = oathtool(&base32(&blob), 0);
    for (email, code) in [(ALICE, forged.as_str()), (BOB, &oathtool(&bob.secret, 0))] {
        let run = env.verify_json(email, code);
        let message = run.fail_json(10, "storage");
        assert!(message.contains("records no key fingerprint"), "{run}");
    }
    assert_eq!(env.snapshot(), before, "a tool re-sealed the database");
    assert_eq!(env.stored_secret(ALICE), blob);

    // Put the record back: nothing was re-sealed, so the forged code is just
    // a wrong one, and the real secret still works.
    env.connect()
        .execute(
            "INSERT INTO settings (key, value) VALUES ('key_fingerprint', ?1)",
            [&fingerprint],
        )
        .expect("restore");
    env.verify_json(ALICE, &forged).fail_json(1, "rejected");
    env.verify_json(ALICE, &oathtool(&alice.secret, 1))
        .ok_json();
}

#[test]
fn a_planted_secret_fails_closed_for_that_account_only() {
    let env = Env::new();
    let (_alice, bob) = two_active(&env);
    let planted = [0x42u8; 20];
    let planted_code = oathtool(&base32(&planted), 0);
    env.connect()
        .execute(
            "UPDATE accounts SET secret = ?1 WHERE email = ?2",
            rusqlite::params![&planted[..], ALICE],
        )
        .expect("plant");
    let before = env.snapshot();
    let run = env.verify_json(ALICE, &planted_code);
    let message = run.fail_json(10, "storage");
    assert!(
        message.contains(ALICE) && message.contains("does not open"),
        "{run}"
    );
    assert_eq!(env.snapshot(), before, "{run}");
    // Bob is not affected.
    env.verify_json(BOB, &oathtool(&bob.secret, 1)).ok_json();
    // And with the key record gone too, the plant is never sealed.
    env.connect()
        .execute("DELETE FROM settings WHERE key = 'key_fingerprint'", [])
        .expect("delete");
    env.verify_json(ALICE, &planted_code)
        .fail_json(10, "storage");
    assert_eq!(
        env.stored_secret(ALICE),
        planted,
        "the planted secret was sealed"
    );
}
