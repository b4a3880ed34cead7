//! Key rotations under load (issue 16), for the SQLite and the MariaDB
//! suites alike: a store of many accounts whose secrets the test knows, and
//! verifications run continuously by several threads (each spawning
//! `mb-2fa-verify` processes) while `mb-2fa-store rekey` re-seals it and
//! `rekey --finish` retires the old key. Every fresh code must be accepted
//! exactly once and every replay rejected with exit 1: a verification that
//! fails closed (exit 10) or rejects a valid code during a rotation is a
//! failed login, which the design promises never to cause.
//!
//! The codes come from the kit's RFC 6238 reference, not from the tools.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::env::Env;
use crate::files::{chmod, fixtures};
use crate::runner::{Run, run_command};
use crate::tools::STORE;
use crate::totp::{PERIOD, decode_secret, now_unix, totp_at};

/// An account the test can compute codes for.
#[derive(Debug, Clone)]
pub struct Known {
    pub email: String,
    /// Base32.
    pub secret: String,
    /// Unused backup codes (enrolled through `mb-2fa-enable`).
    pub backup: Vec<String>,
    /// The latest TOTP step a code of this account was accepted for.
    pub last_step: Option<u64>,
}

/// The generated accounts' emails.
pub fn email(i: usize) -> String {
    format!("user{i:04}@example.com")
}

/// A version 1 database (the fixture's three accounts, plaintext secrets)
/// at `env.db` with `n` more active accounts of random secrets from `next`,
/// then sealed by `mb-2fa-store seal-plaintext`: a store of `n + 3` sealed
/// secrets made by the tools themselves, and the `n` the test knows.
pub fn known_store(env: &Env, n: usize, next: &mut dyn FnMut() -> u64) -> Vec<Known> {
    std::fs::copy(fixtures().join("schema-v1/2fa.db"), &env.db).expect("copy the fixture");
    chmod(&env.db, 0o600);
    let mut known = Vec::new();
    {
        let mut conn = Connection::open(&env.db).expect("open");
        let tx = conn.transaction().expect("tx");
        let created = i64::try_from(now_unix()).expect("now") - 3600;
        for i in 0..n {
            let secret: Vec<u8> = (0..20).map(|_| (next() & 0xff) as u8).collect();
            tx.execute(
                "INSERT INTO accounts (email, state, secret, algorithm, digits, period, issuer, created_at, activated_at)
                 VALUES (?1, 'active', ?2, 'SHA1', 6, 30, 'Mailborder', ?3, ?3)",
                rusqlite::params![email(i), secret, created],
            )
            .expect("insert");
            known.push(Known {
                email: email(i),
                secret: base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &secret),
                backup: Vec::new(),
                last_step: None,
            });
        }
        tx.commit().expect("commit");
    }
    env.run(STORE, ["seal-plaintext", "--json"]).ok_json();
    known
}

/// Builds a `mb-2fa-verify` command with these arguments against the store
/// under test (its `--db` and key file set).
pub type Launch = Arc<dyn Fn(&[&str]) -> Command + Send + Sync>;

/// What the verifying threads saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Fresh TOTP codes accepted (each exactly once).
    pub accepted: usize,
    /// Replayed TOTP codes rejected with exit 1.
    pub replays_rejected: usize,
    /// Backup codes accepted (each exactly once).
    pub backup_accepted: usize,
    /// Spent backup codes tried again and rejected with exit 1.
    pub backup_replays_rejected: usize,
    /// Runs that said on stderr that they used `2fa.key.new`.
    pub used_new_key_file: usize,
    /// The slowest verification.
    pub slowest: Duration,
    /// Every run that did not end as it must.
    pub failures: Vec<String>,
}

impl Tally {
    pub fn runs(&self) -> usize {
        self.accepted + self.replays_rejected + self.backup_accepted + self.backup_replays_rejected
    }

    fn add(&mut self, o: &Tally) {
        self.accepted += o.accepted;
        self.replays_rejected += o.replays_rejected;
        self.backup_accepted += o.backup_accepted;
        self.backup_replays_rejected += o.backup_replays_rejected;
        self.used_new_key_file += o.used_new_key_file;
        self.slowest = self.slowest.max(o.slowest);
        self.failures.extend(o.failures.iter().cloned());
    }
}

/// Threads verifying until stopped.
pub struct Verifiers {
    stop: Arc<AtomicBool>,
    /// Verifications started so far.
    started: Arc<AtomicUsize>,
    /// Verifications finished so far.
    finished: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<(Tally, Vec<Known>)>>,
}

/// Start `workers` threads over disjoint shares of `accounts`. Each takes
/// its accounts in turn: a backup code (one turn in three, while an account
/// of its share has any), else the code of the current step unless one was
/// accepted for it already; one in four accepted codes is sent again at
/// once, a replay that must be rejected (exit 1, never 10). A replay is not
/// counted as a failure, so no account ever locks; a thread whose accounts
/// have all used the current step replays its last accepted code until the
/// next step.
pub fn start(launch: Launch, accounts: Vec<Known>, workers: usize) -> Verifiers {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut shares: Vec<Vec<Known>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, a) in accounts.into_iter().enumerate() {
        shares[i % workers].push(a);
    }
    let threads = shares
        .into_iter()
        .enumerate()
        .map(|(w, share)| {
            let stop = Arc::clone(&stop);
            let counts = (Arc::clone(&started), Arc::clone(&finished));
            let launch = Arc::clone(&launch);
            thread::spawn(move || verify_until(&stop, &counts, &launch, share, w))
        })
        .collect();
    Verifiers {
        stop,
        started,
        finished,
        threads,
    }
}

impl Verifiers {
    /// Verifications started so far.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Verifications finished so far.
    pub fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    /// Run `f`; how long it took and how many verifications ran beside it:
    /// those in flight when it began and those started before it ended.
    /// Counting only the ones started meanwhile would miss the usual case:
    /// a verification that began just before and waited behind `f`'s locks.
    pub fn beside<T>(&self, f: impl FnOnce() -> T) -> (T, Duration, usize) {
        let (t, done_before) = (Instant::now(), self.finished());
        let out = f();
        (out, t.elapsed(), self.started() - done_before)
    }

    /// Stop, and what all threads saw; the accounts as they are now.
    pub fn stop(self) -> (Tally, Vec<Known>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Tally::default();
        let mut accounts = Vec::new();
        for t in self.threads {
            let (tally, share) = t.join().expect("a verifying thread panicked");
            all.add(&tally);
            accounts.extend(share);
        }
        (all, accounts)
    }
}

fn verify_until(
    stop: &AtomicBool,
    (started, finished): &(Arc<AtomicUsize>, Arc<AtomicUsize>),
    launch: &Launch,
    mut share: Vec<Known>,
    worker: usize,
) -> (Tally, Vec<Known>) {
    let mut t = Tally::default();
    let mut turn = worker;
    let run = |t: &mut Tally, args: &[&str]| -> Run {
        started.fetch_add(1, Ordering::SeqCst);
        let t0 = Instant::now();
        let r = run_command(launch(args), None);
        finished.fetch_add(1, Ordering::SeqCst);
        t.slowest = t.slowest.max(t0.elapsed());
        if r.stderr.contains(".new (fingerprint") {
            t.used_new_key_file += 1;
        }
        r
    };
    let mut idle = 0;
    // The step, account and code of the last code this thread had accepted.
    let mut last_accepted: Option<(u64, String, String)> = None;
    while !stop.load(Ordering::SeqCst) && !share.is_empty() {
        turn += 1;
        // One turn in three goes to an account with backup codes left.
        let with_codes = turn
            .is_multiple_of(3)
            .then(|| share.iter().position(|a| !a.backup.is_empty()))
            .flatten();
        let i = with_codes.unwrap_or(turn % share.len());
        let n = share.len();
        let a = &mut share[i];
        if let Some(code) = with_codes.and_then(|_| a.backup.pop()) {
            let r = run(&mut t, &["--email", &a.email, "--code", &code]);
            if r.code == 0 {
                t.backup_accepted += 1;
            } else {
                t.failures
                    .push(format!("a valid backup code was not accepted\n{r}"));
            }
            if turn.is_multiple_of(2) {
                let r = run(&mut t, &["--email", &a.email, "--code", &code]);
                if r.code == 1 {
                    t.backup_replays_rejected += 1;
                } else {
                    t.failures.push(format!(
                        "a spent backup code was not rejected (exit 1)\n{r}"
                    ));
                }
            }
            continue;
        }
        let unix = now_unix();
        let step = unix / PERIOD;
        if a.last_step.is_some_and(|s| s >= step) {
            idle += 1;
            if idle >= n {
                // Every account of this share was used in this step: keep
                // verifying (a rotation must have verifications beside it)
                // with a replay of a code this thread had accepted in this
                // step (rejected, and not counted as a failure), else wait.
                idle = 0;
                match last_accepted.as_ref().filter(|l| l.0 == step) {
                    Some((_, email, code)) => {
                        let r = run(&mut t, &["--email", email, "--code", code]);
                        if r.code == 1 {
                            t.replays_rejected += 1;
                        } else {
                            t.failures
                                .push(format!("a replayed code was not rejected (exit 1)\n{r}"));
                        }
                    }
                    None => thread::sleep(Duration::from_millis(50)),
                }
            }
            continue;
        }
        idle = 0;
        let code = totp_at(&decode_secret(&a.secret), unix, 6);
        let r = run(&mut t, &["--email", &a.email, "--code", &code]);
        if r.code == 0 {
            t.accepted += 1;
            a.last_step = Some(step);
            last_accepted = Some((step, a.email.clone(), code.clone()));
        } else {
            t.failures
                .push(format!("a fresh code (step {step}) was not accepted\n{r}"));
            continue;
        }
        if turn % 4 == 1 {
            let r = run(&mut t, &["--email", &a.email, "--code", &code]);
            if r.code == 1 {
                t.replays_rejected += 1;
            } else {
                t.failures
                    .push(format!("a replayed code was not rejected (exit 1)\n{r}"));
            }
        }
    }
    (t, share)
}

/// How one rotation under load went.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub rekey: Duration,
    pub finish: Duration,
    /// Verifications that ran while `rekey` ran, and while `--finish` ran
    /// (in flight when it began, or started before it ended).
    pub during_rekey: usize,
    pub during_finish: usize,
}

/// With verifications running: wait `settle`, `rekey` (must succeed), wait
/// `settle`, `rekey --finish` (must succeed), wait `settle`. `store` runs
/// `mb-2fa-store` with these arguments against the store under test.
pub fn rotate(v: &Verifiers, store: &dyn Fn(&[&str]) -> Run, settle: Duration) -> Rotation {
    thread::sleep(settle);
    let (_, rekey, during_rekey) = v.beside(|| store(&["rekey", "--json"]).ok_json());
    thread::sleep(settle);
    let (_, finish, during_finish) = v.beside(|| store(&["rekey", "--finish", "--json"]).ok_json());
    thread::sleep(settle);
    Rotation {
        rekey,
        finish,
        during_rekey,
        during_finish,
    }
}

/// After the rotations: the key file alone (no `.new`, no `.old` beside
/// it) opens every secret (`check`), and every account verifies with a
/// code of the next step, which none of them has used, in `threads`
/// parallel runs. The number of accounts verified.
pub fn every_account_verifies_with_the_key_alone(
    key: &Path,
    store: &dyn Fn(&[&str]) -> Run,
    launch: &Launch,
    accounts: &[Known],
    threads: usize,
) -> usize {
    for suffix in [".new", ".old"] {
        let mut p = key.as_os_str().to_os_string();
        p.push(suffix);
        assert!(
            !Path::new(&p).exists(),
            "{} is left after rekey --finish",
            Path::new(&p).display()
        );
    }
    secrets_check(&store(&["check", "--json"]), "check after the rotations");
    let failures = Mutex::new(Vec::new());
    let verified = AtomicUsize::new(0);
    thread::scope(|s| {
        for part in accounts.chunks(accounts.len().div_ceil(threads.max(1)).max(1)) {
            let failures = &failures;
            let verified = &verified;
            s.spawn(move || {
                for a in part {
                    let unix = now_unix() + PERIOD;
                    let code = totp_at(&decode_secret(&a.secret), unix, 6);
                    let r = run_command(launch(&["--email", &a.email, "--code", &code]), None);
                    if r.code == 0 {
                        verified.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failures.lock().expect("lock").push(format!(
                            "{}: not accepted after the rotations\n{r}",
                            a.email
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} account(s) did not verify with the new key alone; the first:\n{}",
        failures.len(),
        failures[0]
    );
    verified.into_inner()
}

/// The `secrets` line of a `mb-2fa-store check --json` run, which must have
/// passed (exit 0) and found every secret open.
#[track_caller]
pub fn secrets_check(run: &Run, ctx: &str) -> serde_json::Value {
    assert_eq!(run.code, 0, "{ctx}: check failed\n{run}");
    let secrets = run.json()["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "secrets")
        .unwrap_or_else(|| panic!("{ctx}: no secrets line\n{run}"))
        .clone();
    assert_eq!(secrets["ok"], true, "{ctx}: {secrets}");
    secrets
}
