//! The audit trail: every change and every verification outcome, with the
//! tool, the account, the outcome and who did it (`SUDO_USER`, else the
//! invoking user), shown newest first by `mb-2fa-audit`; append-only; never a
//! secret or a code. Each record also goes to syslog (auth facility).

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, DISABLE, ENABLE, Env, UNLOCK, VERIFY, decode_secret, now_unix,
    parse_rfc3339_utc, totp_now, wrong_codes,
};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const ADMIN: &str = "alice-admin";

/// `(tool, action, email, outcome, actor)` of a record.
fn key(r: &Value) -> (String, String, String, String, String) {
    let s = |k: &str| r[k].as_str().unwrap_or("<none>").to_string();
    (s("tool"), s("action"), s("email"), s("outcome"), s("actor"))
}

fn row(
    tool: &str,
    action: &str,
    email: &str,
    outcome: &str,
    actor: &str,
) -> (String, String, String, String, String) {
    (
        tool.to_string(),
        action.to_string(),
        email.to_string(),
        outcome.to_string(),
        actor.to_string(),
    )
}

/// Check the shape of every record: the documented fields, an RFC 3339 UTC
/// time close to now.
#[track_caller]
fn check_shape(records: &[Value]) {
    let now = now_unix() as i64;
    for r in records {
        for k in ["at", "tool", "action", "outcome", "actor", "detail"] {
            assert!(r[k].is_string(), "`{k}` is not a string: {r}");
        }
        assert!(r["email"].is_string() || r["email"].is_null(), "{r}");
        let at = parse_rfc3339_utc(r["at"].as_str().expect("at")).expect("at is RFC 3339 UTC");
        assert!(
            (now - 600..=now + 5).contains(&at),
            "at {at}, now {now}: {r}"
        );
        assert!(!r["actor"].as_str().expect("actor").is_empty(), "{r}");
    }
}

/// The name of the user running the tests, as `id -un` prints it.
fn invoking_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn each_tool_records_its_action_with_the_sudo_user_newest_first() {
    let env = Env::new();
    let run = env.run_as(ADMIN, ENABLE, ["--json", "--qr", "none", "--email", ALICE]);
    let secret = run.ok_json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    env.run_as(
        ADMIN,
        VERIFY,
        ["--json", "--email", ALICE, "--code", &totp_now(&secret, 0)],
    )
    .ok_json();
    env.run_as(
        ADMIN,
        VERIFY,
        [
            "--json",
            "--email",
            ALICE,
            "--code",
            &wrong_codes(&secret, 1)[0],
        ],
    )
    .fail_json(1, "rejected");
    env.run_as(ADMIN, BACKUP_CODES, ["--json", "--email", ALICE])
        .ok_json();
    env.run_as(ADMIN, UNLOCK, ["--json", "--email", ALICE])
        .ok_json();
    env.run_as(ADMIN, DISABLE, ["--json", "--yes", "--email", ALICE])
        .ok_json();

    let records = env.audit(Vec::<&str>::new());
    check_shape(&records);
    let got: Vec<_> = records.iter().map(key).collect();
    let want = vec![
        row(DISABLE, "disable", ALICE, "ok", ADMIN),
        row(UNLOCK, "unlock", ALICE, "ok", ADMIN),
        row(BACKUP_CODES, "backup_codes", ALICE, "ok", ADMIN),
        row(VERIFY, "verify", ALICE, "rejected", ADMIN),
        row(VERIFY, "verify", ALICE, "activated", ADMIN),
        row(ENABLE, "enable", ALICE, "ok", ADMIN),
    ];
    assert_eq!(got, want, "{records:#?}");
    // Newest first: times never increase down the list.
    let times: Vec<i64> = records
        .iter()
        .map(|r| parse_rfc3339_utc(r["at"].as_str().expect("at")).expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // The human table says the same.
    let run = env.run(AUDIT, Vec::<&str>::new());
    run.expect_code(0);
    for needle in [
        ADMIN,
        ALICE,
        "backup_codes",
        "unlock",
        "rejected",
        "activated",
    ] {
        assert!(run.stdout.contains(needle), "{needle:?} missing\n{run}");
    }
    let line_of = |word: &str| {
        run.stdout
            .lines()
            .position(|l| l.contains(word))
            .unwrap_or_else(|| panic!("no {word} row\n{run}"))
    };
    // ("disable" does not contain "enable".)
    assert!(
        line_of("disable") < line_of("enable"),
        "newest first\n{run}"
    );
}

#[test]
fn without_sudo_user_the_actor_is_the_invoking_user() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    // An empty SUDO_USER counts as unset.
    env.run_as("", UNLOCK, ["--json", "--email", ALICE])
        .ok_json();
    let me = invoking_user();
    let records = env.audit(Vec::<&str>::new());
    assert_eq!(records.len(), 3, "{records:#?}");
    for r in &records {
        assert_eq!(r["actor"], me.as_str(), "{r}");
    }
}

#[test]
fn every_outcome_is_recorded() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let nobody = "nobody@example.com";
    // enable: conflict.
    env.activate(&e);
    env.run(ENABLE, ["--json", "--qr", "none", "--email", ALICE])
        .fail_json(5, "conflict");
    // verify: accepted, rejected, locked, not_enrolled.
    env.verify_json(ALICE, &totp_now(&e.secret, 1)).ok_json();
    env.verify_json(ALICE, &e.backup_codes[0]).ok_json();
    for c in wrong_codes(&e.secret, 5) {
        env.verify_json(ALICE, &c).fail_json(1, "rejected");
    }
    env.verify_json(ALICE, &totp_now(&e.secret, 1))
        .fail_json(4, "locked");
    env.verify_json(nobody, "123456")
        .fail_json(3, "not_enrolled");
    // backup_codes, unlock: not_enrolled (disable: see below).
    env.run(BACKUP_CODES, ["--json", "--email", nobody])
        .fail_json(3, "not_enrolled");
    env.run(UNLOCK, ["--json", "--email", nobody])
        .fail_json(3, "not_enrolled");

    let records = env.audit(["--limit", "1000"]);
    check_shape(&records);
    let has = |action: &str, email: &str, outcome: &str| {
        records
            .iter()
            .any(|r| r["action"] == action && r["email"] == email && r["outcome"] == outcome)
    };
    for (action, email, outcome) in [
        ("enable", ALICE, "ok"),
        ("enable", ALICE, "conflict"),
        ("verify", ALICE, "activated"),
        ("verify", ALICE, "accepted"),
        ("verify", ALICE, "rejected"),
        ("verify", ALICE, "locked"),
        ("verify", nobody, "not_enrolled"),
        ("backup_codes", nobody, "not_enrolled"),
        ("unlock", nobody, "not_enrolled"),
    ] {
        assert!(
            has(action, email, outcome),
            "no {action}/{outcome} for {email}: {records:#?}"
        );
    }
    // One record per attempt: 5 rejected codes, 1 locked attempt.
    let count = |outcome: &str| {
        records
            .iter()
            .filter(|r| r["action"] == "verify" && r["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("rejected"), 5, "{records:#?}");
    assert_eq!(count("locked"), 1, "{records:#?}");
    assert_eq!(count("accepted"), 2, "{records:#?}");
}

#[test]
fn disable_of_an_unknown_email_is_audited() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let nobody = "nobody@example.com";
    env.run(DISABLE, ["--json", "--yes", "--email", nobody])
        .fail_json(3, "not_enrolled");
    env.run(
        DISABLE,
        ["--json", "--yes", "--email", nobody, "--code", "123456"],
    )
    .fail_json(3, "not_enrolled");
    let records = env.audit(["--email", nobody]);
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("disable", "not_enrolled"), ("disable", "not_enrolled")],
        "each refused disable leaves a record, like backup_codes, unlock and verify do"
    );
}

#[test]
fn filters_email_since_and_limit() {
    let env = Env::new();
    let a = env.enroll(ALICE);
    let b = env.enroll(BOB);
    env.activate(&a);
    env.activate(&b);
    env.run(UNLOCK, ["--json", "--email", BOB]).ok_json();

    let all = env.audit(Vec::<&str>::new());
    assert_eq!(all.len(), 5, "{all:#?}");

    let bob = env.audit(["--email", BOB]);
    assert_eq!(bob.len(), 3, "{bob:#?}");
    assert!(bob.iter().all(|r| r["email"] == BOB), "{bob:#?}");
    assert_eq!(bob[0]["action"], "unlock");
    assert_eq!(bob[2]["action"], "enable");
    // The email is normalised like everywhere else.
    assert_eq!(env.audit(["--email", " Bob@Example.COM "]), bob);
    assert!(env.audit(["--email", "carol@example.com"]).is_empty());

    let one = env.audit(["--limit", "1"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0], all[0], "--limit keeps the newest");
    assert_eq!(env.audit(["--limit", "2", "--email", ALICE]).len(), 2);

    for since in ["1h", "7d", "2000-01-01T00:00:00Z"] {
        assert_eq!(env.audit(["--since", since]), all, "--since {since}");
    }
    assert!(env.audit(["--since", "2999-01-01T00:00:00Z"]).is_empty());

    for bad in ["yesterday", "2026-13-01T00:00:00Z", "", "-1h"] {
        let run = env.run(AUDIT, ["--json", "--since", bad]);
        run.fail_json(2, "usage");
    }
    env.run(AUDIT, ["--json", "--limit", "0"])
        .fail_json(2, "usage");
    env.run(AUDIT, ["--json", "--limit", "many"])
        .fail_json(2, "usage");
    env.run(AUDIT, ["--json", "--email", "not an email"])
        .fail_json(2, "usage");
    // Human mode for nothing found.
    let run = env.run(AUDIT, ["--since", "2999-01-01T00:00:00Z"]);
    run.expect_code(0);
    assert!(!run.stdout.contains(ALICE), "{run}");
}

#[test]
fn audit_needs_a_database() {
    let env = Env::new();
    env.run(AUDIT, ["--json"]).fail_json(10, "storage");
    assert!(!env.db.exists(), "mb-2fa-audit created a database");
}

/// Every value of every column of every audit row, as stored.
fn audit_rows(env: &Env) -> Vec<Vec<rusqlite::types::Value>> {
    let conn = env.connect();
    let mut stmt = conn.prepare("SELECT * FROM audit").expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, rusqlite::types::Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .expect("query")
    .collect::<rusqlite::Result<Vec<_>>>()
    .expect("rows")
}

#[test]
fn no_audit_row_holds_a_code_or_the_secret() {
    use rusqlite::types::Value as Sql;
    let env = Env::new();
    let run = env.run_as(ADMIN, ENABLE, ["--json", "--qr", "none", "--email", ALICE]);
    let doc = run.ok_json();
    let secret = doc["secret"].as_str().expect("secret").to_string();
    let mut backup: Vec<String> = doc["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    // Every kind of submitted code: right, replayed, wrong, backup (right,
    // spent, wrong), through verify and disable --code, locked or not.
    let mut submitted: Vec<String> = Vec::new();
    let mut verify = |code: &str, want: i32| {
        submitted.push(code.to_string());
        env.verify_json(ALICE, code).expect_code(want);
    };
    let first = totp_now(&secret, 0);
    verify(&first, 0);
    verify(&first, 1);
    verify(&backup[0], 0);
    verify(&backup[0], 1);
    verify(&backup[1].to_lowercase().replace('-', ""), 0);
    for c in wrong_codes(&secret, 4) {
        verify(&c, 1);
    }
    verify("AAAA-BBBB-CCCC", 1);
    verify(&totp_now(&secret, 1), 4);
    verify(&backup[2], 4);
    env.run(UNLOCK, ["--email", ALICE]).expect_code(0);
    let code = totp_now(&secret, 1);
    submitted.push(code.clone());
    let regenerated = env
        .run(BACKUP_CODES, ["--json", "--email", ALICE])
        .ok_json();
    backup.extend(
        regenerated["backup_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_string()),
    );
    env.run(
        DISABLE,
        ["--json", "--yes", "--email", ALICE, "--code", &code],
    )
    .ok_json();
    env.verify_json(ALICE, &code).fail_json(3, "not_enrolled");
    // Bob's secret and codes never reached the trail either.
    let run = env.run(ENABLE, ["--json", "--qr", "none", "--email", BOB]);
    let bob = run.ok_json();
    let bob_secret = bob["secret"].as_str().expect("secret").to_string();
    backup.extend(
        bob["backup_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_string()),
    );

    let mut text_needles: Vec<String> = vec![
        secret.clone(),
        secret.to_lowercase(),
        bob_secret.clone(),
        bob_secret.to_lowercase(),
    ];
    for c in &backup {
        text_needles.push(c.clone());
        text_needles.push(c.replace('-', ""));
        text_needles.push(c.to_lowercase());
        text_needles.push(c.to_lowercase().replace('-', ""));
    }
    text_needles.push("AAAA-BBBB-CCCC".to_string());
    text_needles.push("AAAABBBBCCCC".to_string());
    text_needles.extend(submitted.iter().cloned());
    let raw = [decode_secret(&secret), decode_secret(&bob_secret)];

    let rows = audit_rows(&env);
    // One record per tool run that reached the database (the audit tool adds none).
    assert!(rows.len() >= 17, "{} audit rows only", rows.len());
    for row in &rows {
        for value in row {
            match value {
                Sql::Text(t) => {
                    for n in &text_needles {
                        assert!(!t.contains(n.as_str()), "audit value {t:?} holds {n:?}");
                    }
                    for r in &raw {
                        assert!(!mb2fa_testkit::contains_bytes(t.as_bytes(), r));
                    }
                }
                Sql::Blob(b) => {
                    for n in &text_needles {
                        assert!(
                            !mb2fa_testkit::contains_bytes(b, n.as_bytes()),
                            "a blob holds {n:?}"
                        );
                    }
                    for r in &raw {
                        assert!(
                            !mb2fa_testkit::contains_bytes(b, r),
                            "a blob holds a raw secret"
                        );
                    }
                }
                Sql::Integer(i) => {
                    // A number can only be a code if it equals one.
                    for c in &submitted {
                        if let Ok(n) = c.parse::<i64>() {
                            assert_ne!(*i, n, "an audit integer equals the submitted code {c}");
                        }
                    }
                }
                Sql::Real(_) | Sql::Null => {}
            }
        }
    }
    // Nor what mb-2fa-audit prints, in either mode.
    let human = env.run(AUDIT, ["--limit", "1000"]);
    let json = env.run(AUDIT, ["--json", "--limit", "1000"]);
    for run in [&human, &json] {
        run.expect_code(0);
        for n in &text_needles {
            run.assert_not_echoed(n);
        }
    }
}

#[test]
fn the_audit_table_is_append_only() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let before = audit_rows(&env);
    assert_eq!(before.len(), 2);
    let conn = env.connect();
    for sql in [
        "UPDATE audit SET outcome = 'ok'",
        "UPDATE audit SET actor = 'someone-else' WHERE 1",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE outcome = 'activated'",
    ] {
        let err = conn.execute(sql, []).expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    drop(conn);
    assert_eq!(audit_rows(&env), before, "the audit trail was changed");
    // And it keeps growing.
    env.run(UNLOCK, ["--email", ALICE]).expect_code(0);
    assert_eq!(audit_rows(&env).len(), 3);
}

// ---------------------------------------------------------------------------
// Syslog
// ---------------------------------------------------------------------------

/// Every datagram that arrives within a short while of the first.
fn receive_all(sock: &UnixDatagram) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
    }
    out
}

#[test]
fn records_go_to_syslog_on_the_auth_facility() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let path = env.path("log.sock");
    let sock = UnixDatagram::bind(&path).expect("bind a datagram socket");
    let wrong = wrong_codes(&e.secret, 1)[0].clone();
    let run = env.run_env(
        VERIFY,
        ["--json", "--email", ALICE, "--code", &wrong],
        &[
            ("SUDO_USER", OsStr::new(ADMIN)),
            ("MB2FA_SYSLOG_SOCKET", path.as_os_str()),
        ],
    );
    run.fail_json(1, "rejected");
    let got = receive_all(&sock);
    assert_eq!(got.len(), 1, "one record, one datagram: {got:?}");
    let msg = &got[0];
    // auth (4) * 8 + warning (4) = 36, identifier mb-2fa with the pid.
    assert!(msg.starts_with("<36>mb-2fa["), "{msg:?}");
    let rest = &msg["<36>mb-2fa[".len()..];
    let (pid, text) = rest
        .split_once("]: ")
        .expect("`[pid]: ` after the identifier");
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "{msg:?}"
    );
    for needle in ["action=verify", "outcome=rejected", ALICE, ADMIN, VERIFY] {
        assert!(text.contains(needle), "{needle:?} missing from {msg:?}");
    }
    assert!(!msg.contains(&wrong), "the code went to syslog: {msg:?}");
    assert!(!msg.contains(&e.secret), "{msg:?}");

    // Every tool's records go there, all on the auth facility, none with a
    // code or a secret.
    let vars = [("MB2FA_SYSLOG_SOCKET", path.as_os_str())];
    let good = totp_now(&e.secret, 1);
    let run = env.run_env(VERIFY, ["--json", "--email", ALICE, "--code", &good], &vars);
    run.ok_json();
    let run = env.run_env(BACKUP_CODES, ["--json", "--email", ALICE], &vars);
    let codes = run.ok_json()["backup_codes"].clone();
    env.run_env(UNLOCK, ["--json", "--email", ALICE], &vars)
        .ok_json();
    env.run_env(DISABLE, ["--json", "--yes", "--email", ALICE], &vars)
        .ok_json();
    let run = env.run_env(ENABLE, ["--json", "--qr", "none", "--email", BOB], &vars);
    let bob_secret = run.ok_json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let got = receive_all(&sock);
    assert_eq!(got.len(), 5, "{got:#?}");
    for (msg, action) in got
        .iter()
        .zip(["verify", "backup_codes", "unlock", "disable", "enable"])
    {
        let pri: u32 = msg
            .strip_prefix('<')
            .and_then(|m| m.split_once('>'))
            .and_then(|(p, _)| p.parse().ok())
            .unwrap_or_else(|| panic!("no <PRI>: {msg:?}"));
        assert_eq!(pri / 8, 4, "auth facility: {msg:?}");
        assert!(msg.contains(&format!("action={action}")), "{msg:?}");
        assert!(!msg.contains(&good), "{msg:?}");
        assert!(!msg.contains(&bob_secret), "{msg:?}");
        for c in codes.as_array().expect("codes") {
            assert!(!msg.contains(c.as_str().expect("code")), "{msg:?}");
        }
    }
}

#[test]
fn a_missing_or_dead_syslog_never_fails_a_command() {
    let env = Env::new();
    let dead = env.path("dead.sock");
    drop(UnixDatagram::bind(&dead).expect("bind"));
    assert!(dead.exists(), "a socket file nobody listens on");
    let not_a_socket = env.path("plain-file");
    std::fs::write(&not_a_socket, b"").expect("write");
    for socket in [env.path("no-such.sock"), dead, not_a_socket] {
        let vars = [("MB2FA_SYSLOG_SOCKET", socket.as_os_str())];
        let run = env.run_env(ENABLE, ["--json", "--qr", "none", "--email", ALICE], &vars);
        let secret = run.ok_json()["secret"]
            .as_str()
            .expect("secret")
            .to_string();
        env.run_env(
            VERIFY,
            ["--json", "--email", ALICE, "--code", &totp_now(&secret, 0)],
            &vars,
        )
        .ok_json();
        env.run_env(
            VERIFY,
            [
                "--json",
                "--email",
                ALICE,
                "--code",
                &wrong_codes(&secret, 1)[0],
            ],
            &vars,
        )
        .fail_json(1, "rejected");
        env.run_env(BACKUP_CODES, ["--json", "--email", ALICE], &vars)
            .ok_json();
        env.run_env(UNLOCK, ["--json", "--email", ALICE], &vars)
            .ok_json();
        env.run_env(DISABLE, ["--json", "--yes", "--email", ALICE], &vars)
            .ok_json();
        env.run_env(AUDIT, ["--json"], &vars).ok_json();
    }
    // The database still has every record.
    let records = env.audit(["--limit", "1000", "--email", ALICE]);
    assert_eq!(records.len(), 3 * 6, "{records:#?}");
}
