//! Key rotation on a real `mariadbd`: every secret re-sealed in one
//! transaction there too, codes (oathtool) verify after it, the rows hold
//! new sealed bytes, and `--finish` retires the old key.

use std::sync::Arc;
use std::time::Duration;

use mb2fa_testkit::rotation::{self, Known, Launch};
use mb2fa_testkit::{
    Env, PERIOD, STORE, VERIFY, now_unix, oathtool, run_command, spawn_quiet, totp_now,
    write_key_file,
};
use serde_json::Value;

use crate::support::{Db, at, enroll_at, server};

#[test]
fn rekey_verify_and_finish_on_mariadb() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let mut people = Vec::new();
    for i in 0..20 {
        let e = db.enroll(&format!("user{i:02}@example.com"));
        if i % 2 == 0 {
            db.activate(&e);
        }
        people.push(e);
    }
    let sealed = |db: &Db| {
        server.sql(
            Some(&db.name),
            "SELECT email, HEX(secret) FROM mb2fa_accounts ORDER BY email",
        )
    };
    let before = sealed(&db);
    let old_key = std::fs::read(&db.env.key).expect("key");
    let doc = db.run(STORE, &["rekey", "--json"]).ok_json();
    assert_eq!(doc["resealed"], 20, "{doc}");
    let after = sealed(&db);
    let changed = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 20, "every row re-sealed:\n{before}\n{after}");
    let fps = server.sql(
        Some(&db.name),
        "SELECT name, value FROM mb2fa_settings WHERE name LIKE 'key_fingerprint%' ORDER BY name",
    );
    assert!(
        fps.contains(doc["old_fingerprint"].as_str().expect("old"))
            && fps.contains(doc["new_fingerprint"].as_str().expect("new")),
        "{fps}"
    );
    for (i, e) in people.iter().enumerate() {
        let code = oathtool(&e.secret, 1);
        let run = db.run(VERIFY, &["--json", "--email", &e.email, "--code", &code]);
        assert_eq!(run.ok_json()["activated"], Value::Bool(i % 2 == 1), "{run}");
    }
    db.run(STORE, &["rekey"])
        .fail_line(5, STORE, "rekey --finish");
    db.run(STORE, &["check"]).expect_code(0);
    let doc = db.run(STORE, &["rekey", "--finish", "--json"]).ok_json();
    assert_eq!(doc["secrets_checked"], 20, "{doc}");
    assert_eq!(doc["removed_old_key_file"], true, "{doc}");
    let audit = server.sql(
        Some(&db.name),
        "SELECT action FROM mb2fa_audit WHERE action LIKE 'rekey%' ORDER BY id",
    );
    assert_eq!(audit.trim(), "rekey\nrekey-finish", "{audit}");
    // The old key alone: exit 10, naming the fix.
    let new_key = std::fs::read(&db.env.key).expect("key");
    write_key_file(&db.env.key, &old_key, 0o400);
    let code = oathtool(&people[0].secret, 0);
    db.run(VERIFY, &["--email", &people[0].email, "--code", &code])
        .fail_line(10, VERIFY, "copy the new key file");
    write_key_file(&db.env.key, &new_key, 0o400);
    db.run(STORE, &["check"]).expect_code(0);
}

/// Verifications while the key changes, on a real `mariadbd`: a store of
/// 1000 known secrets (sealed by `seal-plaintext` on SQLite, moved by
/// `mb-2fa-store copy`) and 8 enrolled accounts with backup codes; four
/// threads run `mb-2fa-verify` throughout two rotations (`rekey`, then
/// `--finish`). No verification fails closed or rejects a valid code;
/// afterwards the key file alone opens every secret and every account
/// verifies.
#[test]
fn verifications_during_rekey_and_finish_on_mariadb() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let sqlite = Env::new();
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accounts = rotation::known_store(&sqlite, 1000, &mut next);
    sqlite
        .run(STORE, ["copy", "--to", &db.url, "--json"])
        .ok_json();
    // From here on the tools use the MariaDB store with the SQLite env's key.
    let env = Arc::new(sqlite);
    let url = db.url.clone();
    for i in 0..8 {
        let e = enroll_at(&env, &url, &format!("codes{i}@example.com"));
        let run = run_command(
            at(
                &env,
                &url,
                VERIFY,
                &["--email", &e.email, "--code", &totp_now(&e.secret, 0)],
            ),
            None,
        );
        run.expect_code(0);
        accounts.push(Known {
            email: e.email,
            secret: e.secret,
            backup: e.backup_codes,
            last_step: Some(now_unix() / PERIOD),
        });
    }
    let launch: Launch = {
        let (env, url) = (Arc::clone(&env), url.clone());
        Arc::new(move |args: &[&str]| at(&env, &url, VERIFY, args))
    };
    let store = |args: &[&str]| run_command(at(&env, &url, STORE, args), None);
    let n = accounts.len();
    let verifiers = rotation::start(Arc::clone(&launch), accounts, 4);
    let rotations: Vec<_> = (0..2)
        .map(|_| rotation::rotate(&verifiers, &store, Duration::from_millis(400)))
        .collect();
    let (tally, accounts) = verifiers.stop();
    assert!(
        tally.failures.is_empty(),
        "{} verifications went wrong during the rotations; the first:\n{}",
        tally.failures.len(),
        tally.failures[0]
    );
    assert!(
        rotations.iter().all(|r| r.during_rekey > 0) && tally.backup_accepted > 0,
        "{tally:?} {rotations:?}"
    );
    let verified = rotation::every_account_verifies_with_the_key_alone(
        &env.key, &store, &launch, &accounts, 2,
    );
    assert_eq!(verified, n);
    eprintln!(
        "mariadb: verifications during rekey: 2 rotations of {} secrets: rekey {:?}, --finish {:?}; {} verifications ran beside the rekeys, {} in all ({} fresh accepted, {} replays rejected, {} backup codes accepted, {} spent rejected), none failed; slowest {} ms",
        n + 3,
        rotations
            .iter()
            .map(|r| r.rekey.as_millis())
            .collect::<Vec<_>>(),
        rotations
            .iter()
            .map(|r| r.finish.as_millis())
            .collect::<Vec<_>>(),
        rotations.iter().map(|r| r.during_rekey).sum::<usize>(),
        tally.runs(),
        tally.accepted,
        tally.replays_rejected,
        tally.backup_accepted,
        tally.backup_replays_rejected,
        tally.slowest.as_millis()
    );
}

/// kill -9 of `mb-2fa-store rekey` on a real `mariadbd`, at random moments
/// spanning a whole run, one rotation per trial on the same store of 1003
/// known secrets. After every kill: `check` opens every secret (with
/// whichever key file the store records), a sampled account's code is
/// accepted, and a re-run of `rekey` (exit 5 "finish first" when the killed
/// one had got that far) and `rekey --finish` complete.
#[test]
fn killed_rekey_on_mariadb_leaves_a_store_one_key_opens() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let env = Env::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let accounts = rotation::known_store(&env, 1000, &mut next);
    env.run(STORE, ["copy", "--to", &db.url, "--json"])
        .ok_json();
    let store = |args: &[&str]| run_command(at(&env, &db.url, STORE, args), None);
    // One whole rotation, timed: the kills spread over 1.2 times its rekey.
    let started = std::time::Instant::now();
    store(&["rekey"]).expect_code(0);
    let mut whole = started.elapsed();
    store(&["rekey", "--finish"]).expect_code(0);
    let trials: usize = std::env::var("MB2FA_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let (mut killed, mut finished, mut resumed) = (0, 0, 0);
    for trial in 0..trials {
        let delay = Duration::from_micros(next() % (whole.as_micros() as u64 * 6 / 5 + 1));
        let mut child = spawn_quiet(&mut at(&env, &db.url, STORE, &["rekey"]));
        std::thread::sleep(delay);
        match child.try_wait().expect("try_wait") {
            Some(_) => {
                // A warm rekey beat the delay: draw the next ones from a
                // window that fits it, so the kills keep landing mid-run.
                finished += 1;
                whole = whole.min(delay);
            }
            None => {
                child.kill().expect("kill -9");
                killed += 1;
            }
        }
        let _ = child.wait();
        // Whatever the kill left: every secret opens, and a code works.
        rotation::secrets_check(
            &store(&["check", "--json"]),
            &format!("trial {trial}, killed at {delay:?}"),
        );
        let who = &accounts[trial % accounts.len()];
        run_command(
            at(
                &env,
                &db.url,
                VERIFY,
                &["--email", &who.email, "--code", &totp_now(&who.secret, 0)],
            ),
            None,
        )
        .expect_code(0);
        // Then the rotation completes, with no third key.
        let again = store(&["rekey"]);
        match again.code {
            0 => resumed += 1,
            5 => {}
            _ => panic!("trial {trial}: rekey after a kill at {delay:?}:\n{again}"),
        }
        store(&["rekey", "--finish"]).expect_code(0);
        store(&["check"]).expect_code(0);
        let keys = std::fs::read_dir(env.key.parent().expect("key dir"))
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("2fa.key"))
            .count();
        assert_eq!(keys, 1, "trial {trial}: one key file left after --finish");
    }
    eprintln!(
        "mariadb: {trials} rekeys of {} secrets killed at random within 1.2 x {:?} (the last window): {killed} killed, {finished} had finished; {resumed} re-runs had work left",
        accounts.len() + 3,
        whole
    );
    assert!(killed > 0, "no kill landed: {finished} finished first");
}
