//! Key rotation on a real `mariadbd`: every secret re-sealed in one
//! transaction there too, codes (oathtool) verify after it, the rows hold
//! new sealed bytes, and `--finish` retires the old key.

use mb2fa_testkit::{STORE, VERIFY, oathtool, write_key_file};
use serde_json::Value;

use crate::support::{Db, server};

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
