//! Secrets at rest: TOTP secrets are sealed with the key of a key file, so a
//! copy of the database (and of its WAL and SHM) gives away no secret; the key
//! file is made on first use, 0400 in a 0700 directory, and refused when loose,
//! damaged, missing or not this database's key (exit 10, nothing changed).
//! `mb-2fa-disable` and the tools that never touch a secret work without it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, DISABLE, ENABLE, Env, LIST, Run, UNLOCK, VERIFY, chmod, contains_bytes,
    decode_secret, mode, previous_step_code, run_command, totp_now, with_suffix, write_key_file,
};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// Length of a sealed secret: format byte, 24-byte nonce, 20-byte secret,
/// 16-byte tag.
const SEALED_LEN: usize = 1 + 24 + 20 + 16;

/// Assert an exit-10 `--json` failure whose message mentions every fragment.
#[track_caller]
fn storage_error(run: &Run, fragments: &[&str]) -> String {
    let message = run.fail_json(10, "storage");
    for f in fragments {
        assert!(message.contains(f), "the message must mention {f:?}\n{run}");
    }
    message
}

/// Activate with the code of the previous step, so that the current and the
/// next step stay fresh for later verifications in the test.
#[track_caller]
fn activate_early(env: &Env, email: &str, secret: &str) {
    let run = env.verify_json(email, &previous_step_code(secret));
    assert_eq!(run.ok_json()["activated"], true, "{run}");
}

fn key_env(path: &Path) -> [(&'static str, &OsStr); 1] {
    [("MB2FA_KEY_FILE", path.as_os_str())]
}

#[test]
fn first_enrollment_creates_a_0400_key_in_a_0700_directory() {
    // Whatever the umask, as for the database.
    for umask in ["022", "000"] {
        let env = Env::new();
        assert!(!env.key.exists());
        let inner = env.command(ENABLE, ["--json", "--qr", "none", "--email", ALICE]);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(env.dir.path());
        run_command(cmd, None).ok_json();

        assert!(env.key.is_file(), "umask {umask}: no key file was created");
        assert_eq!(mode(&env.key), 0o400, "umask {umask}: key file mode");
        let dir = env.key.parent().expect("key directory");
        assert_eq!(mode(dir), 0o700, "umask {umask}: key directory mode");
        let key = std::fs::read(&env.key).expect("read the key");
        assert_eq!(key.len(), 32, "umask {umask}: the key is 32 bytes");
        assert!(key.iter().any(|b| *b != 0), "an all-zero key");
        // Written atomically: nothing else left in the directory.
        let entries: Vec<_> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(entries.len(), 1, "leftovers beside the key: {entries:?}");

        // Later tools reuse it; they never rewrite it.
        env.enroll(BOB);
        assert_eq!(std::fs::read(&env.key).expect("read"), key);
    }
}

#[test]
fn two_databases_get_two_different_keys() {
    let (a, b) = (Env::new(), Env::new());
    a.enroll(ALICE);
    b.enroll(ALICE);
    assert_ne!(
        std::fs::read(&a.key).expect("key a"),
        std::fs::read(&b.key).expect("key b"),
        "keys must be random"
    );
}

#[test]
fn key_file_option_and_variable_choose_the_key() {
    let env = Env::new();
    let elsewhere = env.path("etc/mailborder/custom.key");
    let run = env.run(
        ENABLE,
        [
            OsStr::new("--json"),
            OsStr::new("--qr"),
            OsStr::new("none"),
            OsStr::new("--email"),
            OsStr::new(ALICE),
            OsStr::new("--key-file"),
            elsewhere.as_os_str(),
        ],
    );
    let secret = run.ok_json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert!(elsewhere.is_file(), "--key-file was not where the key went");
    assert_eq!(mode(&elsewhere), 0o400);
    assert!(!env.key.exists(), "--key-file must win over MB2FA_KEY_FILE");

    // Without --key-file, MB2FA_KEY_FILE (here: a path with no file) is used.
    let code = totp_now(&secret, 0);
    let run = env.verify_json(ALICE, &code);
    storage_error(&run, &["missing", &env.key.display().to_string()]);
    assert!(
        !env.key.exists(),
        "the missing key file must not be created"
    );

    // With the option, it verifies.
    let run = env.run(
        VERIFY,
        [
            OsStr::new("--json"),
            OsStr::new("--email"),
            OsStr::new(ALICE),
            OsStr::new("--code"),
            OsStr::new(&code),
            OsStr::new("--key-file"),
            elsewhere.as_os_str(),
        ],
    );
    assert_eq!(run.ok_json()["activated"], true, "{run}");

    // And through the variable.
    let run = env.run_env(
        VERIFY,
        ["--json", "--email", ALICE, "--code", &totp_now(&secret, 1)],
        &key_env(&elsewhere),
    );
    run.ok_json();
}

#[test]
fn the_database_wal_and_shm_hold_no_secret() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);

    // Hold a connection open (after a read) so the WAL and SHM of the next
    // enrollment stay on disk after the tool exits.
    let conn = env.connect();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .expect("read");
    assert_eq!(n, 1);
    let bob = env.enroll(BOB);
    activate_early(&env, BOB, &bob.secret);
    let wal = std::fs::read(with_suffix(&env.db, "-wal")).expect("the WAL is kept open");
    let shm = std::fs::read(with_suffix(&env.db, "-shm")).expect("the SHM is kept open");
    let db = std::fs::read(&env.db).expect("db");
    drop(conn);
    assert!(
        contains_bytes(&wal, BOB.as_bytes()),
        "the WAL should hold bob's new row (else this test checks nothing)"
    );

    for e in [&alice, &bob] {
        let raw = decode_secret(&e.secret);
        assert_eq!(raw.len(), 20);
        for (name, bytes) in [("db", &db), ("wal", &wal), ("shm", &shm)] {
            assert!(
                !contains_bytes(bytes, &raw),
                "the raw secret of {} is in the {name} file",
                e.email
            );
            assert!(
                !contains_bytes(bytes, e.secret.as_bytes()),
                "the base32 secret of {} is in the {name} file",
                e.email
            );
            assert!(
                !contains_bytes(bytes, e.secret.to_ascii_lowercase().as_bytes()),
                "the lower-case base32 secret of {} is in the {name} file",
                e.email
            );
        }
    }

    // After everything is checkpointed, the database file alone either.
    let db = std::fs::read(&env.db).expect("db");
    for e in [&alice, &bob] {
        assert!(!contains_bytes(&db, &decode_secret(&e.secret)));
        assert!(!contains_bytes(&db, e.secret.as_bytes()));
    }
}

#[test]
fn stored_secrets_are_sealed_blobs() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    let bob = env.enroll(BOB);
    let a = env.stored_secret(ALICE);
    let b = env.stored_secret(BOB);
    for (e, sealed) in [(&alice, &a), (&bob, &b)] {
        assert_eq!(sealed.len(), SEALED_LEN, "{}: {sealed:?}", e.email);
        assert!(!contains_bytes(sealed, &decode_secret(&e.secret)));
    }
    // Random nonces: no two seals share their nonce.
    assert_ne!(a[1..25], b[1..25], "two secrets sealed with one nonce");
    // Re-enrolling seals afresh.
    env.enroll(ALICE);
    assert_ne!(env.stored_secret(ALICE), a);
}

#[test]
fn a_secret_moved_to_another_account_does_not_verify() {
    // Two emails of one length, so that nothing but the address itself tells
    // the rows apart once the enrollment time is copied too.
    const BOB: &str = "carol@example.com";
    assert_eq!(BOB.len(), ALICE.len());
    let env = Env::new();
    let alice = env.enroll(ALICE);
    let bob = env.enroll(BOB);
    activate_early(&env, ALICE, &alice.secret);
    activate_early(&env, BOB, &bob.secret);

    {
        let conn = env.connect();
        let n = conn
            .execute(
                "UPDATE accounts SET secret = (SELECT secret FROM accounts WHERE email = ?1) WHERE email = ?2",
                [ALICE, BOB],
            )
            .expect("tamper");
        assert_eq!(n, 1);
    }
    assert_eq!(env.stored_secret(ALICE), env.stored_secret(BOB));

    let refused = |what: &str| {
        for code in [
            totp_now(&alice.secret, 0),
            totp_now(&alice.secret, 1),
            totp_now(&bob.secret, 0),
            totp_now(&bob.secret, 1),
        ] {
            let run = env.verify_json(BOB, &code);
            assert!(
                run.code == 10 || run.code == 1,
                "{what}: must not verify (exit 10 or 1)\n{run}"
            );
            assert_eq!(run.json()["ok"], false, "{run}");
        }
    };
    refused("alice's sealed secret in bob's row");
    // Also with alice's enrollment time: then only the email tells the rows
    // apart, and the seal must be bound to it.
    env.connect()
        .execute(
            "UPDATE accounts SET created_at = (SELECT created_at FROM accounts WHERE email = ?1) WHERE email = ?2",
            [ALICE, BOB],
        )
        .expect("tamper");
    refused("alice's sealed secret and enrollment time in bob's row");
    // Alice's own row is untouched and still works.
    env.verify_json(ALICE, &totp_now(&alice.secret, 0))
        .ok_json();
}

#[test]
fn a_flipped_bit_in_a_sealed_secret_does_not_verify() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);
    let mut sealed = env.stored_secret(ALICE);
    let last = sealed.len() - 1;
    sealed[last] ^= 0x01;
    env.connect()
        .execute(
            "UPDATE accounts SET secret = ?1 WHERE email = ?2",
            rusqlite::params![sealed, ALICE],
        )
        .expect("tamper");
    let run = env.verify_json(ALICE, &totp_now(&alice.secret, 0));
    assert!(run.code == 10 || run.code == 1, "{run}");
    assert_eq!(run.json()["ok"], false, "{run}");
}

#[test]
fn a_different_key_is_refused_and_changes_nothing() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);
    let right = std::fs::read(&env.key).expect("key");
    let other = env.path("other/2fa.key");
    let mut wrong = right.clone();
    wrong[0] ^= 0xff;
    write_key_file(&other, &wrong, 0o400);

    let before = env.snapshot();
    let code = totp_now(&alice.secret, 0);
    let key_arg = ["--key-file", other.to_str().expect("utf-8 path")];
    let attempts: Vec<(&str, Vec<&str>)> = vec![
        (VERIFY, vec!["--json", "--email", ALICE, "--code", &code]),
        (VERIFY, vec!["--json", "--email", ALICE, "--code", "000000"]),
        // Fail closed: an unknown email is exit 10 too, never "not enrolled".
        (
            VERIFY,
            vec!["--json", "--email", "nobody@example.com", "--code", &code],
        ),
        (ENABLE, vec!["--json", "--qr", "none", "--email", BOB]),
        (
            ENABLE,
            vec!["--json", "--qr", "none", "--email", ALICE, "--force"],
        ),
        (
            DISABLE,
            vec!["--json", "--yes", "--email", ALICE, "--code", &code],
        ),
    ];
    for (tool, args) in &attempts {
        // By option and by variable alike.
        let mut with_option = args.clone();
        with_option.extend_from_slice(&key_arg);
        for run in [
            env.run(tool, &with_option),
            env.run_env(tool, args, &key_env(&other)),
        ] {
            storage_error(
                &run,
                &[
                    "not the key of database",
                    &other.display().to_string(),
                    &env.db.display().to_string(),
                ],
            );
            run.assert_not_echoed(&code);
            assert_eq!(
                env.snapshot(),
                before,
                "a wrong key changed the database\n{run}"
            );
        }
    }
    // Neither key file was touched.
    assert_eq!(std::fs::read(&env.key).expect("key"), right);
    assert_eq!(
        std::fs::read(&other).expect("key"),
        wrong,
        "the wrong key was rewritten"
    );
    // The right key still works: nothing was counted, nothing spent.
    assert_eq!(env.account(ALICE)["failed_attempts"], 0);
    env.verify_json(ALICE, &code).ok_json();
}

#[test]
fn a_loose_key_file_is_refused_like_ssh_refuses_a_private_key() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);
    let before = env.snapshot();
    let code = totp_now(&alice.secret, 0);
    let path = env.key.display().to_string();
    for loose in [
        0o644,
        0o640,
        0o604,
        0o440,
        0o404,
        0o444,
        0o600 | 0o002,
        0o400 | 0o020,
    ] {
        chmod(&env.key, loose);
        for (tool, args) in [
            (
                VERIFY,
                vec!["--json", "--email", ALICE, "--code", code.as_str()],
            ),
            (ENABLE, vec!["--json", "--qr", "none", "--email", BOB]),
            (
                DISABLE,
                vec!["--json", "--yes", "--email", ALICE, "--code", code.as_str()],
            ),
        ] {
            let run = env.run(tool, &args);
            storage_error(&run, &["chmod 0400", &path]);
            assert_eq!(env.snapshot(), before, "mode {loose:o}\n{run}");
        }
        // Human mode: one line on stderr naming the file and the cure.
        let run = env.run(VERIFY, ["--email", ALICE, "--code", code.as_str()]);
        let line = run.fail_line(10, VERIFY, "chmod 0400");
        assert!(line.contains(&path), "{run}");
        assert_eq!(
            mode(&env.key),
            loose,
            "the tool must not fix the mode itself"
        );
    }
    // Owner-only modes are fine.
    for tight in [0o400, 0o600] {
        chmod(&env.key, tight);
        env.run(VERIFY, ["--json", "--email", ALICE, "--code", "000000"])
            .fail_json(1, "rejected");
    }
    env.verify_json(ALICE, &code).ok_json();
}

#[test]
fn a_key_file_of_the_wrong_size_or_kind_is_refused() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);
    let right = std::fs::read(&env.key).expect("key");
    let code = totp_now(&alice.secret, 0);
    let before = env.snapshot();
    let mut longer = right.clone();
    longer.push(b'\n');
    for bytes in [Vec::new(), right[..31].to_vec(), longer, vec![b'a'; 64]] {
        write_key_file(&env.key, &bytes, 0o400);
        let run = env.verify_json(ALICE, &code);
        storage_error(&run, &[&env.key.display().to_string()]);
        assert_eq!(env.snapshot(), before, "{} bytes\n{run}", bytes.len());
        assert_eq!(
            std::fs::read(&env.key).expect("key"),
            bytes,
            "the key file was rewritten"
        );
    }
    // A directory where the key should be.
    std::fs::remove_file(&env.key).expect("rm");
    std::fs::create_dir(&env.key).expect("mkdir");
    chmod(&env.key, 0o700);
    storage_error(
        &env.verify_json(ALICE, &code),
        &[&env.key.display().to_string()],
    );
    std::fs::remove_dir(&env.key).expect("rmdir");
    write_key_file(&env.key, &right, 0o400);
    env.verify_json(ALICE, &code).ok_json();
}

#[test]
fn a_missing_key_is_exit_10_and_is_not_recreated() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);
    let right = std::fs::read(&env.key).expect("key");
    std::fs::remove_file(&env.key).expect("rm key");
    let before = env.snapshot();
    let code = totp_now(&alice.secret, 0);
    let path = env.key.display().to_string();
    for (tool, args) in [
        (
            VERIFY,
            vec!["--json", "--email", ALICE, "--code", code.as_str()],
        ),
        (
            VERIFY,
            vec![
                "--json",
                "--email",
                "nobody@example.com",
                "--code",
                code.as_str(),
            ],
        ),
        (ENABLE, vec!["--json", "--qr", "none", "--email", BOB]),
        (
            ENABLE,
            vec!["--json", "--qr", "none", "--email", ALICE, "--force"],
        ),
        (
            DISABLE,
            vec!["--json", "--yes", "--email", ALICE, "--code", code.as_str()],
        ),
    ] {
        let run = env.run(tool, &args);
        let message = storage_error(&run, &["missing", &path]);
        assert!(
            !message.contains("no 2FA enrollment"),
            "never `not enrolled` without the key\n{run}"
        );
        assert!(!env.key.exists(), "{tool} recreated the key file\n{run}");
        assert_eq!(env.snapshot(), before, "{run}");
    }
    // Put it back: everything works again.
    write_key_file(&env.key, &right, 0o400);
    env.verify_json(ALICE, &code).ok_json();
}

#[test]
fn disable_works_without_any_key_file() {
    const CAROL: &str = "carol@example.com";
    let env = Env::new();
    let alice = env.enroll(ALICE);
    env.enroll(BOB);
    env.enroll(CAROL);
    activate_early(&env, ALICE, &alice.secret);
    let nowhere = env.path("no/such/2fa.key");

    // MB2FA_KEY_FILE pointing nowhere.
    let run = env.run_env(
        DISABLE,
        ["--json", "--yes", "--email", ALICE],
        &key_env(&nowhere),
    );
    let doc = run.ok_json();
    assert_eq!(doc["disabled"], true, "{run}");
    assert!(!nowhere.exists(), "disable created a key file");

    // The real key gone, and --key-file pointing nowhere.
    std::fs::remove_file(&env.key).expect("rm key");
    let run = env.run(
        DISABLE,
        [
            OsStr::new("--json"),
            OsStr::new("--yes"),
            OsStr::new("--email"),
            OsStr::new(BOB),
            OsStr::new("--key-file"),
            nowhere.as_os_str(),
        ],
    );
    run.ok_json();
    assert!(
        !nowhere.exists() && !env.key.exists(),
        "disable created a key file"
    );

    // A loose, damaged key file in its place: it is not even read.
    write_key_file(&env.key, b"junk", 0o644);
    env.run(DISABLE, ["--yes", "--email", CAROL]).expect_code(0);
    assert_eq!(std::fs::read(&env.key).expect("key"), b"junk");

    assert!(env.accounts().is_empty(), "{:?}", env.accounts());
    // The removals are audited.
    for email in [ALICE, BOB, CAROL] {
        let records = env.audit(["--email", email]);
        assert_eq!(records[0]["action"], "disable", "{records:?}");
        assert_eq!(records[0]["outcome"], "ok", "{records:?}");
    }
}

#[test]
fn tools_that_never_touch_a_secret_need_no_key() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    activate_early(&env, ALICE, &alice.secret);
    std::fs::remove_file(&env.key).expect("rm key");
    let nowhere = env.path("no/such/2fa.key");
    let loose = env.path("loose.key");
    write_key_file(&loose, b"not a key", 0o644);
    for key in [&nowhere, &env.key, &loose] {
        let vars = key_env(key);
        env.run_env(LIST, ["--json"], &vars).ok_json();
        env.run_env(AUDIT, ["--json"], &vars).ok_json();
        env.run_env(UNLOCK, ["--json", "--email", ALICE], &vars)
            .ok_json();
        let doc = env
            .run_env(BACKUP_CODES, ["--json", "--email", ALICE], &vars)
            .ok_json();
        assert_eq!(doc["backup_codes"].as_array().map(Vec::len), Some(10));
    }
    assert!(
        !nowhere.exists() && !env.key.exists(),
        "a key file was created"
    );
}
