//! Files on disk: the database directory is created 0700 and the database
//! file 0600, whatever the umask.

use std::process::Command;

use mb2fa_testkit::{ENABLE, Env, bin, mode, run_command};

const ALICE: &str = "alice@example.com";

/// `mb-2fa-enable --db DB ...` under `umask UMASK` (through sh, which sets
/// the umask and execs the tool).
fn enable_with_umask(env: &Env, umask: &str, db: &std::path::Path) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin(ENABLE))
        .args(["--json", "--qr", "none", "--email", ALICE, "--db"])
        .arg(db)
        .env_remove("MB2FA_DB")
        // Never the machine's own /etc/mailborder/2fa.key, nor its syslog.
        .env("MB2FA_KEY_FILE", &env.key)
        .env("MB2FA_SYSLOG_SOCKET", "")
        .current_dir(env.dir.path());
    run_command(cmd, None).ok_json();
}

#[test]
fn fresh_database_directory_is_0700_and_file_0600() {
    for umask in ["022", "000"] {
        let env = Env::new();
        let parent = env.path("var").join("lib");
        let dir = parent.join("mailborder");
        let db = dir.join("2fa.db");
        enable_with_umask(&env, umask, &db);
        assert_eq!(
            mode(&dir),
            0o700,
            "umask {umask}: {} is {:o}",
            dir.display(),
            mode(&dir)
        );
        assert_eq!(
            mode(&db),
            0o600,
            "umask {umask}: {} is {:o}",
            db.display(),
            mode(&db)
        );
        for side in ["2fa.db-wal", "2fa.db-shm"] {
            let p = dir.join(side);
            if p.exists() {
                assert_eq!(
                    mode(&p) & 0o077,
                    0,
                    "umask {umask}: {side} is {:o}",
                    mode(&p)
                );
            }
        }
        // Directories created on the way are not world-writable either.
        assert_eq!(
            mode(&parent) & 0o022,
            0,
            "umask {umask}: {:o}",
            mode(&parent)
        );
    }
}

#[test]
fn later_tools_keep_the_modes() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    env.run(mb2fa_testkit::BACKUP_CODES, ["--email", ALICE])
        .expect_code(0);
    assert_eq!(mode(&env.db), 0o600, "{:o}", mode(&env.db));
}

#[test]
fn the_database_alone_gives_away_no_secret() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let key = mb2fa_testkit::decode_secret(&e.secret);
    let snapshot = env.snapshot();
    for bytes in [snapshot.db, snapshot.wal].into_iter().flatten() {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_slice()),
            "the raw TOTP secret is stored in clear in the database"
        );
        assert!(
            !bytes
                .windows(e.secret.len())
                .any(|w| w == e.secret.as_bytes()),
            "the base32 TOTP secret is stored in clear in the database"
        );
    }
}
