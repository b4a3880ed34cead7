//! Crashes of a key rotation (issue 16): `mb-2fa-store rekey` on a store of
//! 2000 accounts (so the re-seal takes measurable time) killed with SIGKILL
//! at random moments spanning the whole run. After every kill: the key files
//! and the store are in one of the five states the design allows, `check`
//! opens every secret (with whichever key file the store records), sampled
//! accounts' codes (computed by the kit's RFC 6238 reference from the known
//! secrets) match, and then a re-run of `rekey` and `rekey --finish`
//! completes, leaving the one new key, and the codes still match.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use mb2fa_testkit::rotation::{self, Known, Launch};
use mb2fa_testkit::{Env, PERIOD, STORE, VERIFY, mode, now_unix, spawn_quiet, totp_now};

use crate::support::{
    Ending, Rng, copy_env, count_from_env, crash_trials, figure, kill_after, open, setting,
};

/// Generated accounts on top of the fixture's three.
const ACCOUNTS: usize = 2000;
const DEFAULT_TRIALS: usize = 30;

fn sibling(key: &Path, suffix: &str) -> PathBuf {
    let mut s = key.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// A store of 2003 sealed secrets made by the tools themselves (see
/// [`rotation::known_store`]), the 2000 generated ones known.
fn template(rng: &mut Rng) -> (Env, Vec<(String, String)>) {
    let env = Env::new();
    let known = rotation::known_store(&env, ACCOUNTS, &mut || rng.next())
        .into_iter()
        .map(|k| (k.email, k.secret))
        .collect();
    (env, known)
}

fn fresh(tpl: &Env) -> Env {
    let env = Env::new();
    copy_env(tpl, &env);
    env
}

fn read_opt(p: &Path) -> Option<Vec<u8>> {
    match std::fs::read(p) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

/// Where a kill left the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    /// Nothing changed yet.
    Untouched,
    /// `2fa.key.new` written; the store as it was (before the commit).
    NewWritten,
    /// Committed: the store records the new key, the files not yet moved.
    Committed,
    /// `2fa.key.old` kept; `2fa.key.new` not yet moved over the key.
    OldKept,
    /// Done: the new key in place, the old beside it.
    Done,
}

/// The state of `env` after a kill; panics on anything the design does not
/// allow (a torn key file, a store recording a key no file holds, ...).
fn classify(env: &Env, old_key: &[u8], old_fp: &str, ctx: &str) -> (State, Option<Vec<u8>>) {
    let new_path = sibling(&env.key, ".new");
    let old_path = sibling(&env.key, ".old");
    let key = read_opt(&env.key).unwrap_or_else(|| panic!("{ctx}: the key file is gone"));
    let new = read_opt(&new_path);
    let old = read_opt(&old_path);
    for (p, b) in [
        (&env.key, Some(&key)),
        (&new_path, new.as_ref()),
        (&old_path, old.as_ref()),
    ] {
        if let Some(b) = b {
            assert_eq!(b.len(), 32, "{ctx}: {} is torn", p.display());
            assert_eq!(mode(p), 0o400, "{ctx}: {} mode", p.display());
        }
    }
    let conn = open(&env.db);
    let fp = setting(&conn, "key_fingerprint").expect("a key is recorded");
    let rec_old = setting(&conn, "key_fingerprint_old");
    drop(conn);
    let sealed_with_old = fp == old_fp;
    let state = match (sealed_with_old, &rec_old, key == old_key, &new, &old) {
        (true, None, true, None, None) => State::Untouched,
        (true, None, true, Some(_), None) => State::NewWritten,
        (false, Some(o), true, Some(_), None) if o == old_fp => State::Committed,
        (false, Some(o), true, Some(_), Some(kept)) if o == old_fp && kept == old_key => {
            State::OldKept
        }
        (false, Some(o), false, None, Some(kept)) if o == old_fp && kept == old_key => State::Done,
        _ => panic!(
            "{ctx}: a state the design does not allow: recorded {fp} (old {rec_old:?}), key is the old one: {}, .new: {}, .old: {}",
            key == old_key,
            new.is_some(),
            old.is_some()
        ),
    };
    let next = match state {
        State::Untouched => None,
        State::NewWritten | State::Committed | State::OldKept => new,
        State::Done => Some(key),
    };
    (state, next)
}

/// `check` opens every secret; the sampled accounts' codes match.
#[track_caller]
fn every_secret_opens(env: &Env, known: &[(String, String)], rng: &mut Rng, ctx: &str) {
    let secrets = rotation::secrets_check(&env.run(STORE, ["check", "--json"]), ctx);
    let all = format!("all {} open", known.len() + 3);
    assert!(
        secrets["detail"].as_str().unwrap_or("").contains(&all),
        "{ctx}: {secrets}"
    );
    let mut sample = vec![0, known.len() - 1];
    sample.extend((0..3).map(|_| usize::try_from(rng.below(known.len() as u64)).expect("idx")));
    for i in sample {
        let (e, secret) = &known[i];
        let run = env.run(
            VERIFY,
            [
                "--json",
                "--email",
                e,
                "--code",
                &totp_now(secret, 0),
                "--diagnose",
            ],
        );
        let doc = run.ok_json();
        assert_eq!(doc["finding"], "valid", "{ctx}: {e}\n{run}");
    }
}

/// One calibration run: when `2fa.key.new` appeared (the transaction
/// starts right after), when the store recorded the new key (the commit),
/// and when the run ended.
fn calibrate(tpl: &Env, old_fp: &str) -> (Duration, Duration, Duration) {
    let env = fresh(tpl);
    let new_path = sibling(&env.key, ".new");
    let conn = open(&env.db);
    let started = Instant::now();
    let mut child = spawn_quiet(&mut env.command(STORE, ["rekey"]));
    let (mut t_new, mut t_commit) = (None, None);
    loop {
        if t_new.is_none() && new_path.exists() {
            t_new = Some(started.elapsed());
        }
        if t_commit.is_none() && setting(&conn, "key_fingerprint").is_some_and(|fp| fp != old_fp) {
            t_commit = Some(started.elapsed());
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "calibration run failed");
            break;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    let end = started.elapsed();
    (t_new.unwrap_or(end), t_commit.unwrap_or(end), end)
}

/// Run `rekey`, watch the store, and kill it `extra` after its commit
/// became visible (or when it ends first). The delay since the start.
fn kill_after_commit(env: &Env, old_fp: &str, extra: Duration) -> (Duration, Ending) {
    let conn = open(&env.db);
    let started = Instant::now();
    let mut child = spawn_quiet(&mut env.command(STORE, ["rekey"]));
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (
                started.elapsed(),
                Ending::Exited(status.code().unwrap_or(-1)),
            );
        }
        if setting(&conn, "key_fingerprint").is_some_and(|fp| fp != old_fp) {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(extra);
    let delay = started.elapsed();
    if let Some(status) = child.try_wait().expect("wait") {
        return (delay, Ending::Exited(status.code().unwrap_or(-1)));
    }
    let _ = child.kill();
    let status = child.wait().expect("reap");
    (
        delay,
        match status.code() {
            Some(code) => Ending::Exited(code),
            None => Ending::Killed,
        },
    )
}

#[test]
fn killed_rekey_of_2000_accounts() {
    let mut rng = Rng::for_test("rekey");
    let made = Instant::now();
    let (tpl, known) = template(&mut rng);
    let old_key = std::fs::read(&tpl.key).expect("key");
    let old_fp = setting(&open(&tpl.db), "key_fingerprint").expect("fp");
    let trials = crash_trials(DEFAULT_TRIALS);
    let (mut t_new, mut t_commit, mut full) = calibrate(&tpl, &old_fp);
    let calibration = (t_new, t_commit, full);
    let mut states: BTreeMap<State, usize> = BTreeMap::new();
    let mut by_time = [0usize; 3]; // before, during, after the transaction
    let (mut killed, mut finished) = (0, 0);
    let mut max_delay = Duration::ZERO;
    for trial in 0..trials {
        if trial > 0 && trial % 10 == 0 {
            (t_new, t_commit, full) = calibrate(&tpl, &old_fp);
        }
        let env = fresh(&tpl);
        let full_us = u64::try_from(full.as_micros()).expect("us").max(2000);
        // Half spread over the whole run and a little beyond; a quarter
        // around the commit and the file moves after it (a few ms of a run
        // that is mostly the re-seal); a quarter around the key's writing.
        let us = |d: Duration| u64::try_from(d.as_micros()).expect("us");
        let (delay, ending) = if trial % 4 == 2 {
            // Timed from the commit itself (seen by polling the store), so
            // the kill lands in the few ms of checkpoint and file moves.
            let extra = Duration::from_micros(rng.below(4000));
            kill_after_commit(&env, &old_fp, extra)
        } else {
            let delay = Duration::from_micros(match trial % 4 {
                0 | 1 => rng.below(full_us * 11 / 10),
                _ => rng.below(us(t_new) * 2 + 1000),
            });
            (delay, kill_after(env.command(STORE, ["rekey"]), delay))
        };
        max_delay = max_delay.max(delay);
        let ctx = format!("rekey trial {trial}: killed after {delay:?} ({ending:?})");
        by_time[if delay < t_new {
            0
        } else if delay < t_commit {
            1
        } else {
            2
        }] += 1;
        let (state, next_key) = classify(&env, &old_key, &old_fp, &ctx);
        match ending {
            Ending::Killed => killed += 1,
            Ending::Exited(code) => {
                assert_eq!(code, 0, "{ctx}");
                assert_eq!(state, State::Done, "{ctx}: it finished, yet is not done");
                finished += 1;
            }
        }
        *states.entry(state).or_default() += 1;
        every_secret_opens(&env, &known, &mut rng, &ctx);

        // Recovery: rekey again (refused only when it was done), then finish.
        let run = env.run(STORE, ["rekey", "--json"]);
        if state == State::Done {
            run.fail_json(5, "conflict");
        } else {
            let doc = run.ok_json();
            assert_eq!(
                doc["resealed"].is_null(),
                state >= State::Committed,
                "{ctx}: re-sealed again after the commit (or not at all before it)\n{run}"
            );
        }
        let now_key = std::fs::read(&env.key).expect("key");
        assert_ne!(now_key, old_key, "{ctx}: not re-keyed");
        if let Some(next) = &next_key {
            assert_eq!(&now_key, next, "{ctx}: a third key was made");
        }
        env.run(STORE, ["rekey", "--finish", "--json"]).ok_json();
        assert!(!sibling(&env.key, ".old").exists(), "{ctx}");
        assert!(!sibling(&env.key, ".new").exists(), "{ctx}");
        every_secret_opens(&env, &known, &mut rng, &ctx);
    }
    let side = |s| states.get(&s).copied().unwrap_or(0);
    figure(
        "crash, rekey (2003 secrets)",
        format!(
            "{trials} trials (delays up to {} ms; a run took {} ms, 2fa.key.new at {} ms, commit at {} ms): killed mid-run {killed}, finished first {finished}; by the delay: {} before the transaction, {} during it, {} after the commit; left untouched {}, .new written {}, committed with files not moved {}, .old kept {}, done {}; every secret opened after every kill, and rekey + --finish then completed; {} s in all",
            max_delay.as_millis(),
            calibration.2.as_millis(),
            calibration.0.as_millis(),
            calibration.1.as_millis(),
            by_time[0],
            by_time[1],
            by_time[2],
            side(State::Untouched),
            side(State::NewWritten),
            side(State::Committed),
            side(State::OldKept),
            side(State::Done),
            made.elapsed().as_secs(),
        ),
    );
}

/// Accounts enrolled through `mb-2fa-enable` for their backup codes, on
/// top of the 2000 generated ones.
const WITH_BACKUP_CODES: usize = 12;
/// Threads spawning `mb-2fa-verify` throughout.
const VERIFIERS: usize = 6;

/// Verifications while the key changes: six threads run `mb-2fa-verify`
/// continuously (fresh TOTP codes, a replay after one in four, backup codes
/// and their replays) over 2008 accounts while `rekey` re-seals them and
/// `rekey --finish` retires the old key, `MB2FA_REKEY_ROUNDS` times (4).
/// No verification may fail closed or reject a valid code; afterwards the
/// key file alone opens every secret and every account verifies.
#[test]
fn verifications_during_rekey_and_finish() {
    let mut rng = Rng::for_test("rekey-race");
    let made = Instant::now();
    let env = Arc::new(Env::new());
    let mut accounts = rotation::known_store(&env, ACCOUNTS, &mut || rng.next());
    for i in 0..WITH_BACKUP_CODES {
        let e = env.enroll(&format!("codes{i}@example.com"));
        env.activate(&e);
        accounts.push(Known {
            email: e.email,
            secret: e.secret,
            backup: e.backup_codes,
            last_step: Some(now_unix() / PERIOD),
        });
    }
    rng.shuffle(&mut accounts);
    let old_fp = setting(&open(&env.db), "key_fingerprint").expect("fp");
    let launch: Launch = {
        let env = Arc::clone(&env);
        Arc::new(move |args: &[&str]| env.command(VERIFY, args))
    };
    let store = |args: &[&str]| env.run(STORE, args);
    let rounds = count_from_env("MB2FA_REKEY_ROUNDS", 4);
    let prepared = made.elapsed();
    let verifiers = rotation::start(Arc::clone(&launch), accounts, VERIFIERS);
    let mut rotations = Vec::new();
    for _ in 0..rounds {
        rotations.push(rotation::rotate(
            &verifiers,
            &store,
            Duration::from_millis(400),
        ));
    }
    let (tally, accounts) = verifiers.stop();
    assert!(
        tally.failures.is_empty(),
        "{} of {} verifications went wrong during the rotations; the first:\n{}",
        tally.failures.len(),
        tally.runs() + tally.failures.len(),
        tally.failures[0]
    );
    let during: usize = rotations.iter().map(|r| r.during_rekey).sum();
    assert!(
        during > 0 && tally.replays_rejected > 0 && tally.backup_accepted > 0,
        "the rotations ran without verifications beside them: {tally:?} {rotations:?}"
    );
    let new_fp = setting(&open(&env.db), "key_fingerprint").expect("fp");
    assert_ne!(new_fp, old_fp, "not re-keyed");
    let verified = rotation::every_account_verifies_with_the_key_alone(
        &env.key, &store, &launch, &accounts, 2,
    );
    assert_eq!(verified, ACCOUNTS + WITH_BACKUP_CODES);
    let ms = |d: Duration| d.as_millis();
    figure(
        "race, verifications during rekey",
        format!(
            "{rounds} rotations of {} secrets under {VERIFIERS} verifying threads: rekey took {} ms, --finish {} ms; {} verifications ran beside the rekeys, {} beside the --finishes, {} in all: {} fresh codes accepted, {} replays rejected (exit 1), {} backup codes accepted, {} spent ones rejected, {} runs used 2fa.key.new, none failed or exited 10 (slowest {} ms); then all {verified} accounts verified with the new key alone; {} s in all ({} s to prepare)",
            ACCOUNTS + WITH_BACKUP_CODES + 3,
            rotations
                .iter()
                .map(|r| ms(r.rekey).to_string())
                .collect::<Vec<_>>()
                .join("/"),
            rotations
                .iter()
                .map(|r| ms(r.finish).to_string())
                .collect::<Vec<_>>()
                .join("/"),
            during,
            rotations.iter().map(|r| r.during_finish).sum::<usize>(),
            tally.runs(),
            tally.accepted,
            tally.replays_rejected,
            tally.backup_accepted,
            tally.backup_replays_rejected,
            tally.used_new_key_file,
            ms(tally.slowest),
            made.elapsed().as_secs(),
            prepared.as_secs(),
        ),
    );
}
