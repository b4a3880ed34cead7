//! What the reliability tests share: counts from the environment, a seeded
//! random source, database invariants read with rusqlite, runs that may hang
//! or be killed, and the measured figures they print.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mb2fa_testkit::{Env, Run, finish, spawn, with_suffix};
use rusqlite::{Connection, OptionalExtension};

// The reliability tests look at databases through the kit's connection.
pub use mb2fa_testkit::db::{open, user_version};

/// Exit codes of the spec's table (and the policy check's 6 and 7).
pub const SPEC_EXIT_CODES: [i32; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 10];

// ---------------------------------------------------------------------------
// Counts and randomness
// ---------------------------------------------------------------------------

/// A count from the environment variable `var`, else `default`.
pub fn count_from_env(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a count")),
        Err(_) => default,
    }
}

/// Rounds of each race (`MB2FA_RELIABILITY_ROUNDS`).
pub fn rounds(default: usize) -> usize {
    count_from_env("MB2FA_RELIABILITY_ROUNDS", default)
}

/// Kill -9 trials per writing tool (`MB2FA_CRASH_TRIALS`).
pub fn crash_trials(default: usize) -> usize {
    count_from_env("MB2FA_CRASH_TRIALS", default)
}

static SEED_NOTE: Once = Once::new();

/// The seed of this run: `MB2FA_RELIABILITY_SEED`, else the clock. Printed
/// once, so a failure can be replayed with the same random choices.
pub fn seed() -> u64 {
    let seed = match std::env::var("MB2FA_RELIABILITY_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .expect("MB2FA_RELIABILITY_SEED is a number"),
        Err(_) => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970");
            (t.as_secs() << 20) ^ u64::from(t.subsec_micros())
        }
    };
    SEED_NOTE.call_once(|| eprintln!("reliability: seed {seed} (MB2FA_RELIABILITY_SEED)"));
    seed
}

/// xorshift64*: small, seeded, good enough to pick delays and orders.
pub struct Rng(u64);

impl Rng {
    /// A generator for one test: the run's seed mixed with the test's name.
    pub fn for_test(name: &str) -> Rng {
        let mut s = seed() ^ 0x9e37_79b9_7f4a_7c15;
        for b in name.bytes() {
            s = (s ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(s | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).expect("index");
            v.swap(i, j);
        }
    }
}

/// A measured figure, printed for docs/RELIABILITY.md (visible with
/// `--nocapture`, and in the output of a failing test).
pub fn figure(test: &str, text: impl AsRef<str>) {
    eprintln!("reliability: {test}: {}", text.as_ref());
}

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

/// Assert a run did not panic (Rust's exit 101, or a panic message).
#[track_caller]
pub fn no_panic(run: &Run) {
    no_raw_controls(run);
    assert_ne!(run.code, 101, "the tool panicked\n{run}");
    assert!(!run.stderr.contains("panicked"), "the tool panicked\n{run}");
    assert!(
        SPEC_EXIT_CODES.contains(&run.code),
        "exit code outside the spec's table\n{run}"
    );
}

/// What a terminal would act on: controls but the newline (ESC, BEL, CR,
/// DEL, C1 such as CSI U+009B), bidi controls and line separators. None may
/// reach stdout or stderr, whatever the input (an argument clap rejected, a
/// stored value a database writer planted): the tools show them escaped.
pub fn is_terminal_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{200b}' | '\u{feff}'
            | '\u{e0000}'..='\u{e007f}')
}

/// No [`is_terminal_unsafe`] character on stdout or stderr.
#[track_caller]
pub fn no_raw_controls(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if let Some(c) = text.chars().find(|c| is_terminal_unsafe(*c)) {
            panic!("a raw U+{:04X} reached {name}\n{run}", u32::from(c));
        }
    }
}

/// Run `cmd`; `None` if it was still running after `limit` (it is then
/// killed): a hang.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Option<Run> {
    let cmdline = format!("{cmd:?}");
    let mut child = spawn(&mut cmd, false);
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => return Some(finish(child, cmdline)),
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// How a killed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// SIGKILL arrived while it ran.
    Killed,
    /// It had already exited, with this code.
    Exited(i32),
}

/// Start `cmd` (stdout and stderr to /dev/null, so no pipe can block it),
/// send SIGKILL after `delay`, and reap it.
pub fn kill_after(mut cmd: Command, delay: Duration) -> Ending {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    thread::sleep(delay);
    if let Some(status) = child.try_wait().expect("wait") {
        return Ending::Exited(status.code().unwrap_or(-1));
    }
    let _ = child.kill();
    let status = child.wait().expect("reap");
    match status.code() {
        // It exited between try_wait and kill.
        Some(code) => Ending::Exited(code),
        None => Ending::Killed,
    }
}

/// Wall time of one complete run of `cmd` (its output discarded).
pub fn time_one(mut cmd: Command) -> Duration {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let status = cmd.status().expect("run");
    assert!(status.success(), "calibration run failed: {status:?}");
    started.elapsed()
}

// ---------------------------------------------------------------------------
// Looking at a database
// ---------------------------------------------------------------------------

/// `PRAGMA integrity_check` is `ok` and no foreign key dangles.
#[track_caller]
pub fn assert_intact(db: &Path) {
    let conn = open(db);
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        })
        .unwrap_or_else(|e| panic!("integrity_check of {}: {e}", db.display()));
    assert_eq!(check, ["ok"], "integrity_check of {}", db.display());
    let dangling: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("foreign_key_check");
    assert_eq!(dangling, 0, "dangling foreign keys in {}", db.display());
}

/// The names of the tables, indexes and triggers, sorted.
pub fn schema_objects(conn: &Connection) -> Vec<String> {
    let mut s = conn
        .prepare("SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1")
        .expect("schema");
    s.query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .expect("schema rows")
}

/// One account as stored, every column as text (BLOBs in hex), by column.
pub type Row = BTreeMap<String, String>;

fn value_text(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => "NULL".into(),
        V::Integer(i) => i.to_string(),
        V::Real(f) => f.to_string(),
        V::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
        V::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Every row of `sql`, each as column → text.
pub fn rows(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<Row> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let mapped = stmt
        .query_map(params, |r| {
            let mut row = Row::new();
            for (i, n) in names.iter().enumerate() {
                row.insert(n.clone(), value_text(r.get_ref(i)?));
            }
            Ok(row)
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    mapped
        .collect::<rusqlite::Result<Vec<Row>>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Everything an account is made of: its row and its backup codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub account: Row,
    pub codes: Vec<Row>,
}

/// The stored account of `email`, with its backup codes, or `None`.
pub fn stored(conn: &Connection, email: &str) -> Option<Stored> {
    let account = rows(conn, "SELECT * FROM accounts WHERE email = ?1", [email])
        .into_iter()
        .next()?;
    let id: i64 = account["id"].parse().expect("id");
    let codes = rows(
        conn,
        "SELECT * FROM backup_codes WHERE account_id = ?1 ORDER BY id",
        [id],
    );
    Some(Stored { account, codes })
}

/// Structural invariants of every account in `conn`: 10 backup codes, a
/// sealed 61-byte secret (or, with `plaintext_ok`, a 20-byte plaintext one
/// of a version 1 database), a state that matches `activated_at`, and no
/// backup code without its account.
#[track_caller]
pub fn assert_accounts_whole(conn: &Connection, plaintext_ok: bool) {
    let accounts = rows(
        conn,
        "SELECT a.email, length(a.secret) AS secret_len, a.state, a.activated_at,
                (SELECT count(*) FROM backup_codes b WHERE b.account_id = a.id) AS codes
         FROM accounts a",
        [],
    );
    for a in &accounts {
        assert_eq!(a["codes"], "10", "an account without its 10 codes: {a:?}");
        let len = a["secret_len"].as_str();
        assert!(
            len == "61" || (plaintext_ok && len == "20"),
            "a secret that is neither sealed (61 bytes) nor whole: {a:?}"
        );
        let active = a["state"] == "'active'";
        assert_eq!(
            active,
            a["activated_at"] != "NULL",
            "state and activated_at disagree: {a:?}"
        );
    }
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM backup_codes WHERE account_id NOT IN (SELECT id FROM accounts)",
            [],
            |r| r.get(0),
        )
        .expect("orphans");
    assert_eq!(orphans, 0, "backup codes without an account");
}

/// Audit records, in commit order.
pub fn audit_rows(conn: &Connection) -> Vec<Row> {
    rows(conn, "SELECT * FROM audit ORDER BY id", [])
}

/// The `settings` value of `key`.
pub fn setting(conn: &Connection, key: &str) -> Option<String> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
    .expect("settings")
}

// ---------------------------------------------------------------------------
// Copies of a prepared database
// ---------------------------------------------------------------------------

/// Copy the database and its WAL (the newest verifications live there until
/// the next checkpoint), as a backup must.
pub fn copy_db(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy the database");
    let wal = with_suffix(from, "-wal");
    if wal.exists() {
        std::fs::copy(&wal, with_suffix(to, "-wal")).expect("copy the WAL");
    }
}

/// Copy the database (and its WAL, if a process left one) and the key file
/// of `from` into the fresh environment `to`.
pub fn copy_env(from: &Env, to: &Env) {
    copy_db(&from.db, &to.db);
    if from.key.exists() {
        mb2fa_testkit::write_key_file(&to.key, &std::fs::read(&from.key).expect("key"), 0o400);
    }
}

// ---------------------------------------------------------------------------
// Privileged helpers: mounts, immutable files, another user
// ---------------------------------------------------------------------------

static PRIV_NOTE: Once = Once::new();

/// Run a helper command quietly; did it succeed?
pub fn quietly(program: &str, args: &[&OsStr]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Say once that privileged cases are skipped on this machine.
pub fn skip_note(what: &str) {
    PRIV_NOTE.call_once(|| {
        eprintln!(
            "note: skipping the cases that need {what} (not root, or no permission here); \
             CI runs as root and runs them"
        );
    });
}

/// A tmpfs mounted on a directory for the life of the value (unmounted on
/// drop, also when the test fails).
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `kib` KiB on `dir` (created); `None` when mounting is
    /// not permitted here.
    pub fn mount(dir: &Path, kib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let opts = format!("size={kib}k,mode=0700");
        let ok = quietly(
            "mount",
            &[
                OsStr::new("-t"),
                OsStr::new("tmpfs"),
                OsStr::new("-o"),
                OsStr::new(&opts),
                OsStr::new("tmpfs"),
                dir.as_os_str(),
            ],
        );
        ok.then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Make the mount read-only (or writable again).
    pub fn remount(&self, read_only: bool) {
        let opts = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        assert!(
            quietly(
                "mount",
                &[OsStr::new("-o"), OsStr::new(opts), self.dir.as_os_str()]
            ),
            "mount -o {opts} {}",
            self.dir.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if !quietly("umount", &[self.dir.as_os_str()]) {
            let _ = quietly("umount", &[OsStr::new("-l"), self.dir.as_os_str()]);
        }
    }
}

/// `chattr +i` on a path for the life of the value (`chattr -i` on drop).
pub struct Immutable {
    path: PathBuf,
}

impl Immutable {
    pub fn set(path: &Path) -> Option<Immutable> {
        quietly("chattr", &[OsStr::new("+i"), path.as_os_str()]).then(|| Immutable {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = quietly("chattr", &[OsStr::new("-i"), self.path.as_os_str()]);
    }
}

/// `cmd` run as uid/gid 65534 through `setpriv`, if this machine allows it
/// and that user can run the binary; else `None`.
pub fn as_nobody(cmd: &Command) -> Option<Command> {
    let probe = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(cmd.get_program())
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return None;
    }
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    Some(wrapped)
}

/// Give a path to the unprivileged user.
pub fn chown_nobody(path: &Path) {
    assert!(
        quietly("chown", &[OsStr::new("65534:65534"), path.as_os_str()]),
        "chown {}",
        path.display()
    );
}
