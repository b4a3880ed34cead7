//! Broken storage: the database path is a directory, a FIFO, a symlink, not
//! SQLite, truncated, empty, from a newer schema, read-only, in an unwritable
//! directory, on a full disk; the key file is missing, empty, the wrong
//! length, loose, or not this database's key; another process holds the
//! write lock too long; a row holds impossible values. Each gets exit 10 with
//! a one-line message naming the file and a cure, fails closed (never a
//! "yes", never "not enrolled"), and leaves what is stored as it was.
//!
//! Read-only and unwritable cases need privileges (CI runs as root): a
//! read-only tmpfs mount, `chattr +i`, and runs as an unprivileged user
//! through `setpriv`. Disk full uses a small tmpfs, and also RLIMIT_FSIZE
//! (`prlimit --fsize`, with SIGXFSZ ignored), which needs no privilege.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, DISABLE, ENABLE, Enrolled, Env, LIST, POLICY, Run, UNLOCK, VERIFY, chmod,
    db_bytes, decode_secret, now_unix, previous_step_time, run_all, run_command, totp_at, totp_now,
    with_suffix, write_key_file,
};

use crate::support::{
    Immutable, Tmpfs, as_nobody, assert_accounts_whole, assert_intact, chown_nobody, copy_db,
    copy_env, figure, no_panic, open, quietly, run_with_timeout, skip_note, stored, user_version,
};

const A: &str = "alice@example.com";
const NEW: &str = "new@example.com";

/// An environment with alice active (activated with the previous step's
/// code, so the current one is fresh) and one backup code spent.
fn populated() -> (Env, Enrolled) {
    let env = Env::new();
    let e = env.enroll(A);
    let t = previous_step_time();
    env.verify_json(A, &totp_at(&decode_secret(&e.secret), t, 6))
        .ok_json();
    env.verify_json(A, &e.backup_codes[9]).ok_json();
    (env, e)
}

/// What a tool is asked to do, and whether it writes.
struct Call {
    tool: &'static str,
    args: Vec<String>,
    writes: bool,
}

/// One run of every tool, each with its usual arguments.
fn every_tool(e: &Enrolled) -> Vec<Call> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let totp = totp_now(&e.secret, 0);
    vec![
        Call {
            tool: ENABLE,
            args: v(&["--json", "--qr", "none", "--email", NEW]),
            writes: true,
        },
        Call {
            tool: ENABLE,
            args: v(&["--json", "--qr", "none", "--force", "--email", A]),
            writes: true,
        },
        Call {
            tool: VERIFY,
            args: v(&["--json", "--email", A, "--code", &totp]),
            writes: true,
        },
        Call {
            tool: VERIFY,
            args: v(&["--json", "--email", A, "--code", &e.backup_codes[0]]),
            writes: true,
        },
        Call {
            tool: DISABLE,
            args: v(&["--json", "--yes", "--email", A]),
            writes: true,
        },
        Call {
            tool: BACKUP_CODES,
            args: v(&["--json", "--email", A]),
            writes: true,
        },
        Call {
            tool: UNLOCK,
            args: v(&["--json", "--email", A]),
            writes: true,
        },
        Call {
            tool: POLICY,
            args: v(&["--json", "set", "--grace-days", "3"]),
            writes: true,
        },
        Call {
            tool: POLICY,
            args: v(&["--json", "check", "--email", A]),
            writes: true,
        },
        Call {
            tool: LIST,
            args: v(&["--json"]),
            writes: false,
        },
        Call {
            tool: AUDIT,
            args: v(&["--json"]),
            writes: false,
        },
        Call {
            tool: POLICY,
            args: v(&["--json", "show"]),
            writes: false,
        },
    ]
}

/// Words of a cure: what to do about it.
const CURES: [&str; 12] = [
    "restore",
    "chmod",
    "sudo",
    "--db",
    "--key-file",
    "upgrade",
    "free some space",
    "check",
    "try again",
    "point",
    "mode",
    "remove",
];

/// Assert an exit-10 storage error naming `path` and a cure; the message.
#[track_caller]
fn storage_error(run: &Run, path: &Path) -> String {
    no_panic(run);
    let message = run.fail_json(10, "storage");
    let shown = path.display().to_string();
    assert!(
        message.contains(&shown),
        "the message must name {shown}\n{run}"
    );
    assert!(
        CURES.iter().any(|c| message.contains(c)),
        "the message must say what to do\n{run}"
    );
    message
}

/// Run every tool against `db` (with `env`'s key) and expect exit 10 naming
/// `named`; `reads_may_work` lets the reading tools succeed instead.
fn expect_all_refused(
    env: &Env,
    e: &Enrolled,
    db: &Path,
    named: &Path,
    reads_may_work: bool,
) -> usize {
    let mut n = 0;
    for call in every_tool(e) {
        let mut cmd = env.bare_command(call.tool);
        cmd.arg("--db").arg(db).args(&call.args);
        let run = run_with_timeout(cmd, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} {:?} hung on {}", call.tool, call.args, db.display()));
        if reads_may_work && !call.writes && run.code == 0 {
            continue;
        }
        storage_error(&run, named);
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------
// The path is not a database file
// ---------------------------------------------------------------------------

#[test]
fn the_database_path_is_a_directory() {
    let (env, e) = populated();
    let dir = env.path("dir.db");
    std::fs::create_dir(&dir).expect("mkdir");
    let n = expect_all_refused(&env, &e, &dir, &dir, false);
    assert_eq!(
        std::fs::read_dir(&dir).expect("ls").count(),
        0,
        "files appeared in it"
    );
    figure(
        "storage, directory",
        format!("{n} tool runs: exit 10 naming the path"),
    );
}

#[test]
fn the_database_path_is_a_fifo_and_nothing_hangs() {
    let (env, e) = populated();
    let fifo = env.path("fifo.db");
    assert!(
        quietly("mkfifo", &[fifo.as_os_str()]),
        "mkfifo {}",
        fifo.display()
    );
    let started = Instant::now();
    let n = expect_all_refused(&env, &e, &fifo, &fifo, false);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo)
            .expect("stat")
            .file_type()
            .is_fifo()
    );
    figure(
        "storage, FIFO",
        format!(
            "{n} tool runs: exit 10, none hung ({:?} in all)",
            started.elapsed()
        ),
    );
}

#[test]
fn the_database_path_is_a_dangling_symlink_or_a_loop() {
    let (env, e) = populated();
    let target = env.path("nowhere/2fa.db");
    let link = env.path("dangling.db");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let n = expect_all_refused(&env, &e, &link, &link, false);
    assert!(
        !target.exists() && !target.parent().expect("dir").exists(),
        "created through the link"
    );
    let (l1, l2) = (env.path("loop1.db"), env.path("loop2.db"));
    std::os::unix::fs::symlink(&l2, &l1).expect("symlink");
    std::os::unix::fs::symlink(&l1, &l2).expect("symlink");
    let m = expect_all_refused(&env, &e, &l1, &l1, false);
    figure(
        "storage, dangling symlink and symlink loop",
        format!("{} tool runs: exit 10", n + m),
    );
}

#[test]
fn the_database_path_is_a_symlink_to_a_file_that_is_not_a_database() {
    let (env, e) = populated();
    let target = env.path("precious.conf");
    let text = b"root:x:0:0:root:/root:/bin/bash\n".repeat(50);
    std::fs::write(&target, &text).expect("write");
    let link = env.path("link.db");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let n = expect_all_refused(&env, &e, &link, &link, false);
    assert_eq!(
        std::fs::read(&target).expect("read"),
        text,
        "the file behind the link changed"
    );
    for side in ["-wal", "-shm", "-journal"] {
        assert!(
            !with_suffix(&target, side).exists(),
            "{side} left beside the target"
        );
    }
    figure(
        "storage, symlink to a non-database",
        format!("{n} tool runs: exit 10, target byte-identical"),
    );
}

#[test]
fn a_symlinked_database_file_is_refused_a_symlinked_directory_works() {
    // A symlink at the database path would make its target (any file root
    // can write) a database (issue 12, item 3): refused, the target left
    // alone. Admins who move the database to another disk link the
    // directory instead (or pass --db): that works, and the write-ahead log
    // lives beside the real file.
    let (env, e) = populated();
    let link = env.path("elsewhere.db");
    std::os::unix::fs::symlink(&env.db, &link).expect("symlink");
    let before = db_bytes(&env.db);
    let mut cmd = env.bare_command(VERIFY);
    cmd.arg("--db")
        .arg(&link)
        .args(["--json", "--email", A, "--code", &totp_now(&e.secret, 0)]);
    let run = run_command(cmd, None);
    assert!(
        run.fail_json(10, "storage").contains("symbolic link"),
        "{run}"
    );
    assert_eq!(db_bytes(&env.db), before, "{run}");

    let dir_link = env.path("moved");
    std::os::unix::fs::symlink(env.dir.path(), &dir_link).expect("symlink");
    let mut cmd = env.bare_command(VERIFY);
    cmd.arg("--db").arg(dir_link.join("2fa.db")).args([
        "--json",
        "--email",
        A,
        "--code",
        &totp_now(&e.secret, 0),
    ]);
    run_command(cmd, None).ok_json();
    // The other path sees the change at once.
    env.verify_json(A, &totp_now(&e.secret, 0))
        .fail_json(1, "rejected");
    assert_intact(&env.db);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let (env, e) = populated();
    let mut n = 0;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"this is not a database\n".repeat(300)),
        (
            "random bytes",
            (0..20_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        ("SQLite magic, junk after", {
            let mut b = b"SQLite format 3\0".to_vec();
            b.extend((0..8000u32).map(|i| (i * 7 + 3) as u8));
            b
        }),
    ];
    for (case, bytes) in cases {
        let path = env.path(&format!("{}.db", case.replace(' ', "-").replace(',', "")));
        std::fs::write(&path, &bytes).expect("write");
        n += expect_all_refused(&env, &e, &path, &path, false);
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "{case}: the file was rewritten"
        );
    }
    figure(
        "storage, not SQLite",
        format!("3 files, {n} tool runs: exit 10, files byte-identical"),
    );
}

#[test]
fn a_truncated_database_is_refused_and_left_alone() {
    let (env, e) = populated();
    // More accounts, so the file has many pages.
    for i in 0..6 {
        env.enroll(&format!("user{i}@example.com"));
    }
    let conn = open(&env.db);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);
    let full = std::fs::read(&env.db).expect("db");
    assert!(full.len() > 8 * 4096, "{} bytes", full.len());
    let mut n = 0;
    for keep in [100, 4096, 3 * 4096, full.len() / 2] {
        let path = env.path(&format!("truncated-{keep}.db"));
        std::fs::write(&path, &full[..keep]).expect("write");
        n += expect_all_refused(&env, &e, &path, &path, false);
        assert_eq!(
            std::fs::read(&path).expect("read"),
            &full[..keep],
            "{keep}: rewritten"
        );
    }
    figure(
        "storage, truncated",
        format!(
            "4 truncations of a {} byte database, {n} tool runs: exit 10, files byte-identical",
            full.len()
        ),
    );
}

#[test]
fn an_empty_database_file_fails_closed() {
    // A database file truncated to nothing (a restore gone wrong, a full
    // disk) holds no enrollments and no policy, so a login front end must not
    // be told "not enrolled" (exit 3, it may let the user in) or "allow"
    // (exit 6): the tools that answer it say exit 10 and leave the file alone.
    let (env, e) = populated();
    let path = env.path("empty.db");
    std::fs::write(&path, b"").expect("write");
    for (tool, args) in [
        (
            VERIFY,
            vec!["--json", "--email", A, "--code", &e.backup_codes[0]],
        ),
        (POLICY, vec!["--json", "check", "--email", A]),
    ] {
        let mut cmd = env.bare_command(tool);
        cmd.arg("--db").arg(&path).args(&args);
        let run = run_command(cmd, None);
        no_panic(&run);
        assert_eq!(
            run.code, 10,
            "an empty database file must fail closed, not answer for it\n{run}"
        );
        storage_error(&run, &path);
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            0,
            "{tool} rewrote the empty file"
        );
    }
}

#[test]
fn a_newer_schema_is_refused_and_never_downgraded() {
    let (env, e) = populated();
    let conn = open(&env.db);
    conn.pragma_update(None, "user_version", 99)
        .expect("user_version");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);
    let before = db_bytes(&env.db);
    let mut n = 0;
    for call in every_tool(&e) {
        let run = env.run(call.tool, &call.args);
        let message = storage_error(&run, &env.db);
        assert!(message.contains("newer"), "{run}");
        n += 1;
    }
    assert_eq!(db_bytes(&env.db), before, "a newer database was changed");
    assert_eq!(user_version(&open(&env.db)), 99, "downgraded");
    figure(
        "storage, newer schema (99)",
        format!("{n} tool runs: exit 10, file byte-identical, still 99"),
    );
}

// ---------------------------------------------------------------------------
// Read-only and unwritable
// ---------------------------------------------------------------------------

/// Run every tool; writers must exit 10 naming `named`, readers exit 0 or
/// 10; the database file and its WAL (copied with it) keep their bytes.
fn read_only_round(
    env: &Env,
    e: &Enrolled,
    db: &Path,
    named: &Path,
    wrap: &dyn Fn(Command) -> Command,
) -> usize {
    let before = std::fs::read(db).expect("read");
    let wal_before = std::fs::read(with_suffix(db, "-wal")).unwrap_or_default();
    let mut n = 0;
    for call in every_tool(e) {
        let mut cmd = env.bare_command(call.tool);
        cmd.arg("--db").arg(db).args(&call.args);
        let run = run_with_timeout(wrap(cmd), Duration::from_secs(30)).expect("no hang");
        no_panic(&run);
        if !call.writes {
            assert!(run.code == 0 || run.code == 10, "{run}");
            if run.code == 0 {
                continue;
            }
        }
        storage_error(&run, named);
        n += 1;
        assert_eq!(
            std::fs::read(db).expect("read"),
            before,
            "a read-only database changed\n{run}"
        );
        let wal = std::fs::read(with_suffix(db, "-wal")).unwrap_or_default();
        assert!(wal == wal_before, "a refused write changed the log\n{run}");
    }
    n
}

#[test]
fn a_read_only_mount() {
    let (env, e) = populated();
    let Some(mnt) = Tmpfs::mount(&env.path("ro"), 1024) else {
        return skip_note("mount (tmpfs)");
    };
    let db = mnt.dir.join("2fa.db");
    copy_db(&env.db, &db);
    mnt.remount(true);
    let n = read_only_round(&env, &e, &db, &db, &|c| c);
    figure(
        "storage, read-only mount",
        format!("{n} writing runs: exit 10 naming the file"),
    );
}

#[test]
fn an_immutable_database_file() {
    let (env, e) = populated();
    let db = env.path("immutable.db");
    copy_db(&env.db, &db);
    let Some(_guard) = Immutable::set(&db) else {
        return skip_note("chattr +i");
    };
    let n = read_only_round(&env, &e, &db, &db, &|c| c);
    figure(
        "storage, immutable file (chattr +i)",
        format!("{n} writing runs: exit 10 naming the file"),
    );
}

#[test]
fn an_unwritable_directory() {
    let (env, e) = populated();
    let dir = env.path("locked-dir");
    std::fs::create_dir(&dir).expect("mkdir");
    let db = dir.join("2fa.db");
    copy_db(&env.db, &db);
    let before = db_bytes(&db);
    let Some(guard) = Immutable::set(&dir) else {
        return skip_note("chattr +i");
    };
    // An existing database whose directory takes no new file (its WAL).
    let n = read_only_round(&env, &e, &db, &db, &|c| c);
    // A new database in it.
    let fresh = dir.join("new.db");
    let mut cmd = env.bare_command(ENABLE);
    cmd.arg("--db")
        .arg(&fresh)
        .args(["--json", "--qr", "none", "--email", A]);
    storage_error(&run_command(cmd, None), &fresh);
    drop(guard);
    assert!(!fresh.exists());
    assert_eq!(db_bytes(&db), before);
    figure(
        "storage, unwritable directory (chattr +i)",
        format!("{} runs: exit 10 naming the file", n + 1),
    );
}

#[test]
fn a_0400_database_for_an_unprivileged_user() {
    // Root ignores permission bits, so this runs the tools as uid 65534.
    let (env, e) = populated();
    let probe = env.bare_command(LIST);
    if as_nobody(&probe).is_none() {
        return skip_note("setpriv to an unprivileged user");
    }
    chmod(env.dir.path(), 0o711);
    let home = env.path("nobody");
    std::fs::create_dir(&home).expect("mkdir");
    let db = home.join("2fa.db");
    copy_db(&env.db, &db);
    // One self-contained file: the second round below removes the WAL.
    open(&db)
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&db, side));
    }
    let key = home.join("keys/2fa.key");
    write_key_file(&key, &std::fs::read(&env.key).expect("key"), 0o400);
    for p in [
        home.as_path(),
        db.as_path(),
        key.parent().expect("dir"),
        key.as_path(),
    ] {
        chown_nobody(p);
    }
    chmod(&db, 0o400);
    let before = db_bytes(&db);
    let wrap = |mut c: Command| {
        c.env("MB2FA_KEY_FILE", &key);
        as_nobody(&c).expect("setpriv")
    };
    let n = read_only_round(&env, &e, &db, &db, &wrap);
    // And a directory the user may not write in (0500), with a 0600 file.
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&db, side));
    }
    chmod(&db, 0o600);
    chmod(&home, 0o500);
    let m = read_only_round(&env, &e, &db, &db, &wrap);
    chmod(&home, 0o700);
    assert_eq!(db_bytes(&db), before);
    figure(
        "storage, 0400 file and 0500 directory as uid 65534 (setpriv)",
        format!("{} writing runs: exit 10 naming the file", n + m),
    );
}

// ---------------------------------------------------------------------------
// Disk full
// ---------------------------------------------------------------------------

/// What a write on a nearly full disk may do: succeed and be stored, or fail
/// with exit 10 naming the database; never half-store, never panic.
struct FullDiskTally {
    ok: usize,
    refused: usize,
}

/// Try three writes against `db` (a copy of `env`'s), each wrapped by
/// `wrap`; then `release` the pressure (the checks need a working disk) and
/// check each outcome against what is stored.
fn fill_round(
    env: &Env,
    e: &Enrolled,
    db: &Path,
    wrap: &dyn Fn(Command) -> Command,
    release: &dyn Fn(),
    tally: &mut FullDiskTally,
) {
    let cmd = |tool: &str, args: &[&str]| {
        let mut c = env.bare_command(tool);
        c.arg("--db").arg(db).args(args);
        wrap(c)
    };
    let before = stored(&open(&env.db), A).expect("alice");
    let t = now_unix();
    let step = (t / 30).to_string();
    let code = totp_at(&decode_secret(&e.secret), t, 6);
    let verify = run_command(
        cmd(VERIFY, &["--json", "--email", A, "--code", &code]),
        None,
    );
    let enable = run_command(
        cmd(ENABLE, &["--json", "--qr", "none", "--email", NEW]),
        None,
    );
    let regen = run_command(cmd(BACKUP_CODES, &["--json", "--email", A]), None);
    release();
    for run in [&verify, &enable, &regen] {
        no_panic(run);
        if run.code == 0 {
            tally.ok += 1;
        } else {
            storage_error(run, db);
            tally.refused += 1;
        }
    }
    let conn = open(db);
    let after = stored(&conn, A).expect("alice");
    // A TOTP code: accepted and recorded (so never accepted again), or
    // refused and not recorded.
    let want_step = if verify.code == 0 {
        step
    } else {
        before.account["last_step"].clone()
    };
    assert_eq!(after.account["last_step"], want_step, "{verify}");
    // A new enrollment: stored whole, or not at all.
    assert_eq!(stored(&conn, NEW).is_some(), enable.code == 0, "{enable}");
    // New backup codes: all ten new ones, or the old ones untouched.
    assert_eq!(after.codes == before.codes, regen.code != 0, "{regen}");
    assert_accounts_whole(&conn, false);
    drop(conn);
    assert_intact(db);
}

#[test]
fn a_full_disk() {
    let (env, e) = populated();
    let size = std::fs::metadata(&env.db).expect("db").len() / 1024;
    let mut tally = FullDiskTally { ok: 0, refused: 0 };
    let levels = [0u64, 4, 8, 16, 24, 32, 40, 48, 64, 96, 160];
    for free in levels {
        let Some(mnt) = Tmpfs::mount(&env.path(&format!("full-{free}")), size + 512) else {
            return skip_note("mount (tmpfs)");
        };
        let db = mnt.dir.join("2fa.db");
        copy_db(&env.db, &db);
        let filler = mnt.dir.join("filler");
        fill(&filler, free);
        let release = || std::fs::remove_file(&filler).expect("rm filler");
        fill_round(&env, &e, &db, &|c| c, &release, &mut tally);
        // Space again: everything works.
        let mut c = env.bare_command(UNLOCK);
        c.arg("--db").arg(&db).args(["--json", "--email", A]);
        run_command(c, None).ok_json();
        drop(mnt);
    }
    figure(
        "storage, disk full (tmpfs)",
        format!(
            "{} free-space levels from 0 to {} KiB, {} writes: {} stored whole, {} refused with exit 10, 0 torn",
            levels.len(),
            levels[levels.len() - 1],
            tally.ok + tally.refused,
            tally.ok,
            tally.refused
        ),
    );
}

/// Fill the file system of `filler` until `free_kib` KiB are left.
fn fill(filler: &Path, free_kib: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(filler).expect("filler");
    let chunk = vec![0x5au8; 4096];
    let mut written = 0u64;
    while f.write_all(&chunk).is_ok() {
        written += 4096;
    }
    let _ = f.flush();
    drop(f);
    let keep = written.saturating_sub(free_kib * 1024);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(filler)
        .expect("filler");
    f.set_len(keep).expect("truncate the filler");
}

#[test]
fn a_file_size_limit() {
    // RLIMIT_FSIZE: writes past the limit fail (EFBIG) instead of filling a
    // disk; SIGXFSZ is ignored, so the tool sees the error.
    let (env, e) = populated();
    let mut tally = FullDiskTally { ok: 0, refused: 0 };
    let limits = [0u64, 1024, 4096, 8192, 16_384, 32_768, 65_536, 262_144];
    for limit in limits {
        let work = Env::new();
        copy_env(&env, &work);
        let wrap = |c: Command| {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!(
                    "trap '' XFSZ; exec prlimit --fsize={limit} -- \"$0\" \"$@\""
                ))
                .arg(c.get_program())
                .args(c.get_args());
            for (k, v) in c.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            if let Some(d) = c.get_current_dir() {
                sh.current_dir(d);
            }
            sh
        };
        fill_round(&work, &e, &work.db, &wrap, &|| {}, &mut tally);
        // Without the limit, everything works.
        work.run(UNLOCK, ["--json", "--email", A]).ok_json();
    }
    figure(
        "storage, file size limit (prlimit --fsize)",
        format!(
            "{} limits from 0 to {} bytes, {} writes: {} stored whole, {} refused with exit 10, 0 torn",
            limits.len(),
            limits[limits.len() - 1],
            tally.ok + tally.refused,
            tally.ok,
            tally.refused
        ),
    );
}

// ---------------------------------------------------------------------------
// Busy
// ---------------------------------------------------------------------------

#[test]
fn a_write_lock_held_too_long_is_exit_10_not_an_answer() {
    // Another process holds the write lock past the busy timeout (5 s). Every
    // writer waits, then fails closed with exit 10 "busy" — never "not
    // enrolled", never "rejected" — and changes nothing; readers go on.
    let (env, e) = populated();
    let before = stored(&open(&env.db), A);
    let holder = open(&env.db);
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let started = Instant::now();
    let calls = every_tool(&e);
    let cmds = calls.iter().map(|c| env.command(c.tool, &c.args)).collect();
    let runs = run_all(cmds, None);
    let waited = started.elapsed();
    holder.execute_batch("ROLLBACK").expect("release");
    let mut busy = 0;
    for (call, run) in calls.iter().zip(&runs) {
        no_panic(run);
        if !call.writes {
            run.ok_json();
            continue;
        }
        let message = storage_error(run, &env.db);
        assert!(message.contains("busy"), "{run}");
        busy += 1;
    }
    assert!(
        waited >= Duration::from_secs(4),
        "gave up after {waited:?}, before the busy timeout"
    );
    assert_eq!(stored(&open(&env.db), A), before, "changed while refused");
    // Released: the same code works now.
    env.verify_json(A, &totp_now(&e.secret, 0)).ok_json();
    figure(
        "storage, write lock held past the busy timeout",
        format!(
            "{busy} writers: exit 10 \"busy\" after {:.1} s; readers answered",
            waited.as_secs_f64()
        ),
    );
}

// ---------------------------------------------------------------------------
// Damaged rows
// ---------------------------------------------------------------------------

#[test]
fn impossible_stored_values_are_refused_not_panicked_on() {
    let (env, e) = populated();
    let damage: [(&str, &str); 9] = [
        (
            "drift",
            "UPDATE accounts SET drift_steps = 9223372036854775807",
        ),
        (
            "negative drift",
            "UPDATE accounts SET drift_steps = -9223372036854775808",
        ),
        (
            "last step",
            "UPDATE accounts SET last_step = 9223372036854775807",
        ),
        ("digits", "UPDATE accounts SET digits = 99"),
        ("period", "UPDATE accounts SET period = 0"),
        ("state", "UPDATE accounts SET state = 'bogus'"),
        ("secret", "UPDATE accounts SET secret = x'00'"),
        ("created_at", "UPDATE accounts SET created_at = -1"),
        (
            "backup hashes",
            "UPDATE backup_codes SET hash = 'not a hash'",
        ),
    ];
    let mut n = 0;
    for (case, sql) in damage {
        let work = Env::new();
        copy_env(&env, &work);
        let conn = open(&work.db);
        conn.execute_batch(&format!("PRAGMA ignore_check_constraints = ON; {sql}"))
            .expect(case);
        drop(conn);
        for code in [totp_now(&e.secret, 0), e.backup_codes[0].clone()] {
            for extra in [&[][..], &["--diagnose"][..]] {
                let mut args = vec!["--json", "--email", A, "--code", &code];
                args.extend_from_slice(extra);
                let run = work.run(VERIFY, &args);
                no_panic(&run);
                assert!(matches!(run.code, 0 | 1 | 4 | 10), "{case}: {run}");
                if run.code == 10 {
                    storage_error(&run, &work.db);
                }
                // A TOTP code is never judged against a damaged secret.
                let unusable = matches!(
                    case,
                    "secret" | "state" | "digits" | "period" | "created_at"
                );
                if unusable && code.len() == 6 && extra.is_empty() {
                    assert_eq!(run.code, 10, "{case}: {run}");
                }
                n += 1;
            }
        }
        // The list never panics on it either.
        no_panic(&work.run(LIST, ["--json"]));
    }
    figure(
        "storage, impossible stored values",
        format!("9 damages, {n} verify runs: no panic, no acceptance of a damaged secret"),
    );
}

// ---------------------------------------------------------------------------
// Key files
// ---------------------------------------------------------------------------

#[test]
fn bad_key_files_are_refused_before_any_change() {
    let (env, e) = populated();
    let right = std::fs::read(&env.key).expect("key");
    let elsewhere = env.path("loose.key");
    let key = env.key.clone();
    type Setup = Box<dyn Fn()>;
    let cases: Vec<(&str, Setup)> = vec![
        (
            "missing",
            Box::new({
                let k = key.clone();
                move || {
                    let _ = std::fs::remove_file(&k);
                }
            }),
        ),
        (
            "empty",
            Box::new({
                let k = key.clone();
                move || write_key_file(&k, b"", 0o400)
            }),
        ),
        (
            "31 bytes",
            Box::new({
                let k = key.clone();
                let r = right.clone();
                move || write_key_file(&k, &r[..31], 0o400)
            }),
        ),
        (
            "33 bytes",
            Box::new({
                let k = key.clone();
                let r = right.clone();
                move || {
                    let mut b = r.clone();
                    b.push(b'\n');
                    write_key_file(&k, &b, 0o400)
                }
            }),
        ),
        (
            "mode 0644",
            Box::new({
                let k = key.clone();
                let r = right.clone();
                move || write_key_file(&k, &r, 0o644)
            }),
        ),
        (
            "mode 0440",
            Box::new({
                let k = key.clone();
                let r = right.clone();
                move || write_key_file(&k, &r, 0o440)
            }),
        ),
        (
            "mode 0604",
            Box::new({
                let k = key.clone();
                let r = right.clone();
                move || write_key_file(&k, &r, 0o604)
            }),
        ),
        (
            "another key",
            Box::new({
                let k = key.clone();
                move || write_key_file(&k, &[0x42; 32], 0o400)
            }),
        ),
        (
            "a directory",
            Box::new({
                let k = key.clone();
                move || {
                    let _ = std::fs::remove_file(&k);
                    std::fs::create_dir(&k).expect("mkdir");
                }
            }),
        ),
        (
            "a symlink to a loose key",
            Box::new({
                let k = key.clone();
                let r = right.clone();
                let el = elsewhere.clone();
                move || {
                    let _ = std::fs::remove_file(&k);
                    write_key_file(&el, &r, 0o644);
                    std::os::unix::fs::symlink(&el, &k).expect("symlink");
                }
            }),
        ),
        (
            "a FIFO",
            Box::new({
                let k = key.clone();
                move || {
                    let _ = std::fs::remove_file(&k);
                    assert!(quietly("mkfifo", &[k.as_os_str()]));
                }
            }),
        ),
    ];
    let totp = totp_now(&e.secret, 0);
    let keyed: Vec<Vec<&str>> = vec![
        vec!["mb-2fa-enable", "--json", "--qr", "none", "--email", NEW],
        vec![
            "mb-2fa-enable",
            "--json",
            "--qr",
            "none",
            "--force",
            "--email",
            A,
        ],
        vec!["mb-2fa-verify", "--json", "--email", A, "--code", &totp],
        vec![
            "mb-2fa-verify",
            "--json",
            "--email",
            A,
            "--code",
            &e.backup_codes[0],
        ],
        vec![
            "mb-2fa-verify",
            "--json",
            "--email",
            A,
            "--code",
            &totp,
            "--diagnose",
        ],
        vec![
            "mb-2fa-disable",
            "--json",
            "--yes",
            "--email",
            A,
            "--code",
            &totp,
        ],
    ];
    let mut n = 0;
    for (case, setup) in &cases {
        setup();
        let key_before = key_state(&key);
        let before = db_bytes(&env.db);
        for args in &keyed {
            let run = run_with_timeout(env.command(args[0], &args[1..]), Duration::from_secs(30))
                .unwrap_or_else(|| panic!("{case}: {args:?} hung"));
            let message = storage_error(&run, &key);
            assert!(!message.contains("no 2FA enrollment"), "{case}: {run}");
            assert_eq!(
                db_bytes(&env.db),
                before,
                "{case}: the database changed\n{run}"
            );
            assert_eq!(
                key_state(&key),
                key_before,
                "{case}: the key file was touched\n{run}"
            );
            n += 1;
        }
        // Put the right key back.
        if std::fs::symlink_metadata(&key).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(&key).expect("rmdir");
        }
        let _ = std::fs::remove_file(&key);
        write_key_file(&key, &right, 0o400);
    }
    env.verify_json(A, &totp).ok_json();
    figure(
        "storage, bad key files",
        format!(
            "{} cases x {} keyed runs = {n}: exit 10 naming the key file, database and key untouched",
            cases.len(),
            keyed.len()
        ),
    );
}

/// What is at a key path: kind, mode and bytes.
fn key_state(path: &PathBuf) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => "absent".into(),
        Ok(m) if m.file_type().is_symlink() => {
            format!("link to {:?}", std::fs::read_link(path).ok())
        }
        Ok(m) if m.is_file() => format!("file {:o} {:?}", m.mode(), std::fs::read(path).ok()),
        Ok(m) => format!("other {:o}", m.mode()),
    }
}
