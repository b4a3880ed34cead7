//! The operations on a real SQLite store, with a fixed clock.

use super::*;
use crate::clock::{FixedClock, NtpStatus};
use crate::code::Code;
use crate::error::ErrorKind;
use crate::model::State;
use crate::store::{Location, OpenMode};
use crate::totp;

const NOW: i64 = 1_800_000_015;

fn setup() -> (tempfile::TempDir, Store, Email) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut store =
        Store::open(&Location::Sqlite(tmp.path().join("2fa.db")), OpenMode::Init).expect("open");
    store.unlock(&tmp.path().join("2fa.key")).expect("key");
    (
        tmp,
        store,
        Email::parse("alice@example.com").expect("email"),
    )
}

fn ctx(clock: &FixedClock) -> Ctx<'_> {
    Ctx::for_tests(clock)
}

fn totp_code(e: &Enrollment, step_offset: i64) -> Code {
    let step = e.params.step_at(NOW) + step_offset;
    Code::Totp(totp::code_for_step(&e.secret, &e.params, step))
}

#[test]
fn lifecycle() {
    let (_tmp, mut store, email) = setup();
    let clock = FixedClock(NOW);
    let clock = ctx(&clock);
    let e = enable(&mut store, &clock, &email, "Mailborder", false).expect("enable");
    assert_eq!(e.backup_codes.len(), 10);
    let shown = format!("{e:?}");
    assert!(!shown.contains(e.secret.to_base32().as_str()), "{shown}");
    assert!(!shown.contains(e.backup_codes[0].as_str()), "{shown}");
    assert_eq!(e.replaced, None);

    // Backup codes don't work before activation.
    let b0 = Code::Backup(e.backup_codes[0].clone());
    assert_eq!(
        verify(&mut store, &clock, &email, &b0).map_err(|e| e.kind()),
        Err(ErrorKind::Rejected)
    );

    let v = verify(&mut store, &clock, &email, &totp_code(&e, 0)).expect("verify");
    assert!(v.activated);
    assert_eq!(v.offset_steps, Some(0));
    let replay = verify(&mut store, &clock, &email, &totp_code(&e, 0)).expect_err("replay");
    assert_eq!(replay.kind(), ErrorKind::Rejected);
    assert!(replay.message().contains("already used"));
    let earlier = verify(&mut store, &clock, &email, &totp_code(&e, -1)).expect_err("earlier");
    assert_eq!(earlier.kind(), ErrorKind::Rejected);

    let v = verify(&mut store, &clock, &email, &b0).expect("backup");
    assert_eq!(v.method, Method::BackupCode);
    assert_eq!(v.backup_codes_left, 9);
    let again = verify(&mut store, &clock, &email, &b0).expect_err("again");
    assert!(
        again.message().contains("already used"),
        "{}",
        again.message()
    );

    let fresh = regenerate_backup_codes(&mut store, &clock, &email).expect("regen");
    let old1 = Code::Backup(e.backup_codes[1].clone());
    assert_eq!(
        verify(&mut store, &clock, &email, &old1).map_err(|e| e.kind()),
        Err(ErrorKind::Rejected)
    );
    let v = verify(&mut store, &clock, &email, &Code::Backup(fresh[3].clone())).expect("new");
    assert_eq!(v.backup_codes_left, 9);

    let conflict = enable(&mut store, &clock, &email, "Mailborder", false).expect_err("active");
    assert_eq!(conflict.kind(), ErrorKind::Conflict);

    let summaries = list(&mut store).expect("list");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].state, State::Active);
    assert_eq!(summaries[0].activated_at, Some(NOW));

    disable(&mut store, &clock, &email, None).expect("disable");
    let gone = verify(&mut store, &clock, &email, &totp_code(&e, 1)).expect_err("gone");
    assert_eq!(gone.kind(), ErrorKind::NotEnrolled);
    assert_eq!(
        disable(&mut store, &clock, &email, None).map_err(|e| e.kind()),
        Err(ErrorKind::NotEnrolled)
    );
    assert!(list(&mut store).expect("list").is_empty());
}

#[test]
fn pending_enrollment_is_replaced_and_force_replaces_active() {
    let (_tmp, mut store, email) = setup();
    let clock = FixedClock(NOW);
    let clock = ctx(&clock);
    let first = enable(&mut store, &clock, &email, "Mailborder", false).expect("first");
    let second = enable(&mut store, &clock, &email, "Mailborder", false).expect("second");
    assert_eq!(second.replaced, Some(State::Pending));
    assert_ne!(first.secret, second.secret);
    let old = verify(&mut store, &clock, &email, &totp_code(&first, 0));
    assert_eq!(old.map_err(|e| e.kind()), Err(ErrorKind::Rejected));
    verify(&mut store, &clock, &email, &totp_code(&second, 0)).expect("activate");
    let third = enable(&mut store, &clock, &email, "Mailborder", true).expect("force");
    assert_eq!(third.replaced, Some(State::Active));
    let summaries = list(&mut store).expect("list");
    assert_eq!(summaries[0].state, State::Pending);
    assert_eq!(summaries[0].backup_codes_left, 10);
}

#[test]
fn disable_with_code_requires_a_valid_code() {
    let (_tmp, mut store, email) = setup();
    let clock = FixedClock(NOW);
    let clock = ctx(&clock);
    let e = enable(&mut store, &clock, &email, "Mailborder", false).expect("enable");
    verify(&mut store, &clock, &email, &totp_code(&e, -1)).expect("activate");
    let wrong = Code::parse("000000").expect("shape");
    let wrong = if matches!(&wrong, Code::Totp(c) if **c == *totp::code_for_step(&e.secret, &e.params, e.params.step_at(NOW)))
    {
        Code::parse("111111").expect("shape")
    } else {
        wrong
    };
    let err = disable(&mut store, &clock, &email, Some(&wrong)).expect_err("wrong");
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(list(&mut store).expect("list").len(), 1);
    disable(&mut store, &clock, &email, Some(&totp_code(&e, 0))).expect("disable");
    assert!(list(&mut store).expect("list").is_empty());
}

#[test]
fn verify_fails_closed_on_unknown_email() {
    let (_tmp, mut store, _) = setup();
    let bob = Email::parse("bob@example.com").expect("email");
    let clock = FixedClock(NOW);
    let clock = ctx(&clock);
    let err =
        verify(&mut store, &clock, &bob, &Code::parse("123456").expect("c")).expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotEnrolled);
    let err = regenerate_backup_codes(&mut store, &clock, &bob).expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotEnrolled);
}

fn wrong_totp(e: &Enrollment) -> Code {
    let right: Vec<String> = (-1..=1)
        .map(|o| totp::code_for_step(&e.secret, &e.params, e.params.step_at(NOW) + o).to_string())
        .collect();
    let wrong = (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !right.contains(c))
        .expect("a wrong code");
    Code::parse(&wrong).expect("shape")
}

#[test]
fn five_wrong_codes_lock_and_the_lock_doubles_then_success_resets() {
    let (_tmp, mut store, email) = setup();
    let t0 = FixedClock(NOW);
    let e = enable(&mut store, &ctx(&t0), &email, "Mailborder", false).expect("enable");
    verify(&mut store, &ctx(&t0), &email, &totp_code(&e, -1)).expect("activate");
    let wrong = wrong_totp(&e);
    for i in 1..=4 {
        let err = verify(&mut store, &ctx(&t0), &email, &wrong).expect_err("wrong");
        assert_eq!(err.kind(), ErrorKind::Rejected, "attempt {i}");
    }
    let fifth = verify(&mut store, &ctx(&t0), &email, &wrong).expect_err("wrong");
    assert_eq!(fifth.kind(), ErrorKind::Rejected);
    assert!(
        fifth.message().contains("now locked until"),
        "{}",
        fifth.message()
    );
    // Locked: even the right code is refused, and not evaluated or counted.
    let locked = verify(&mut store, &ctx(&t0), &email, &totp_code(&e, 0)).expect_err("locked");
    assert_eq!(locked.kind(), ErrorKind::Locked);
    assert!(
        locked.message().contains(&rfc3339(NOW + 30)),
        "{}",
        locked.message()
    );
    let s = list(&mut store).expect("list");
    assert_eq!(
        (s[0].failed_attempts, s[0].locked_until),
        (5, Some(NOW + 30))
    );
    // After 30 s one more failure locks for 60 s.
    let t1 = FixedClock(NOW + 30);
    verify(&mut store, &ctx(&t1), &email, &wrong).expect_err("wrong");
    let s = list(&mut store).expect("list");
    assert_eq!(
        (s[0].failed_attempts, s[0].locked_until),
        (6, Some(NOW + 90))
    );
    // After that, the right code works and resets everything.
    let t2 = FixedClock(NOW + 90);
    let step = e.params.step_at(NOW + 90);
    let good = Code::Totp(totp::code_for_step(&e.secret, &e.params, step));
    verify(&mut store, &ctx(&t2), &email, &good).expect("accepted after the lock");
    let s = list(&mut store).expect("list");
    assert_eq!((s[0].failed_attempts, s[0].locked_until), (0, None));
}

#[test]
fn wrong_backup_codes_count_replays_do_not_and_unlock_clears() {
    let (_tmp, mut store, email) = setup();
    let c = FixedClock(NOW);
    let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
    verify(&mut store, &ctx(&c), &email, &totp_code(&e, 0)).expect("activate");
    // A replay is not a guess.
    for _ in 0..6 {
        verify(&mut store, &ctx(&c), &email, &totp_code(&e, 0)).expect_err("replay");
    }
    assert_eq!(list(&mut store).expect("list")[0].failed_attempts, 0);
    let bad = Code::parse("AAAA-BBBB-CCCC").expect("shape");
    for _ in 0..5 {
        verify(&mut store, &ctx(&c), &email, &bad).expect_err("bad");
    }
    let good = Code::Backup(e.backup_codes[0].clone());
    let locked = verify(&mut store, &ctx(&c), &email, &good).expect_err("locked");
    assert_eq!(locked.kind(), ErrorKind::Locked);
    let before = unlock(&mut store, &ctx(&c), &email).expect("unlock");
    assert_eq!(before.before.failed_attempts, 5);
    assert!(before.was_locked);
    verify(&mut store, &ctx(&c), &email, &good).expect("works after unlock");
    let log = audit_log(&mut store, Some(&email), None, 100).expect("audit");
    let outcomes: Vec<&str> = log.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes.first(), Some(&"accepted"));
    assert!(
        log.iter()
            .any(|r| r.action == Action::Unlock && r.detail.contains("5 failures"))
    );
    assert_eq!(outcomes.iter().filter(|o| **o == "locked").count(), 1);
    for r in &log {
        assert_eq!(r.actor, "tester");
        assert!(!r.detail.contains(e.backup_codes[0].as_str()));
        assert!(!r.detail.contains(e.secret.to_base32().as_str()));
    }
}

#[test]
fn secrets_are_sealed_and_a_wrong_key_is_refused() {
    let (tmp, mut store, email) = setup();
    let c = FixedClock(NOW);
    let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
    drop(store);
    let bytes = std::fs::read(tmp.path().join("2fa.db")).expect("read");
    assert!(!bytes.windows(20).any(|w| w == e.secret.as_bytes()));
    // Another key file: refused before anything is read or written.
    let other = tmp.path().join("other.key");
    crate::key_file::create(&other).expect("key");
    let mut store = Store::open(
        &Location::Sqlite(tmp.path().join("2fa.db")),
        OpenMode::MustExist,
    )
    .expect("open");
    let err = store.unlock(&other).expect_err("wrong key");
    assert_eq!(err.exit_code(), 10);
    assert!(
        err.message().contains("not the key of database"),
        "{}",
        err.message()
    );
    // A missing key file is not silently replaced once secrets are sealed.
    let err = store
        .unlock(&tmp.path().join("missing.key"))
        .expect_err("missing");
    assert!(err.message().contains("missing"), "{}", err.message());
    assert!(!tmp.path().join("missing.key").exists());
    // Keyless operations still work (break-glass).
    disable(&mut store, &ctx(&c), &email, None).expect("disable without key");
    // With every account removed, a new key may take over.
    store
        .unlock(&tmp.path().join("new.key"))
        .expect("new key once nothing is sealed");
    enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enroll again");
}

fn code_at(e: &Enrollment, now: i64, offset: i64) -> Code {
    Code::Totp(totp::code_for_step(
        &e.secret,
        &e.params,
        e.params.step_at(now) + offset,
    ))
}

#[test]
fn verify_learns_a_consistent_drift() {
    let (_tmp, mut store, email) = setup();
    let e = enable(
        &mut store,
        &ctx(&FixedClock(NOW)),
        &email,
        "Mailborder",
        false,
    )
    .expect("enable");
    // A phone 30 s behind: three codes in a row match at -1.
    for i in 0..3 {
        let t = NOW + 30 * i;
        let v = verify(
            &mut store,
            &ctx(&FixedClock(t)),
            &email,
            &code_at(&e, t, -1),
        )
        .expect("ok");
        assert_eq!(v.offset_steps, Some(-1));
    }
    assert_eq!(list(&mut store).expect("list")[0].drift_steps, -1);
    // The window is centred on -1 now: a code 60 s behind is accepted.
    let t = NOW + 120;
    let v = verify(
        &mut store,
        &ctx(&FixedClock(t)),
        &email,
        &code_at(&e, t, -2),
    )
    .expect("ok");
    assert_eq!(v.offset_steps, Some(-2));
}

#[test]
fn resync_far_out_then_the_skewed_phone_verifies() {
    let (_tmp, mut store, email) = setup();
    let c = FixedClock(NOW);
    let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
    // A phone 5 minutes behind: plain verification fails.
    let far = code_at(&e, NOW, -10);
    assert_eq!(
        verify(&mut store, &ctx(&c), &email, &far).map_err(|e| e.kind()),
        Err(ErrorKind::Rejected)
    );
    let digits = |c: &Code| match c {
        Code::Totp(d) => d.to_string(),
        Code::Backup(_) => unreachable!(),
    };
    // Non-consecutive codes do not resync (and count as a failure).
    let err = resync(
        &mut store,
        &ctx(&c),
        &email,
        &digits(&code_at(&e, NOW, -10)),
        &digits(&code_at(&e, NOW, -8)),
    )
    .expect_err("not consecutive");
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(list(&mut store).expect("list")[0].failed_attempts, 2);
    let r = resync(
        &mut store,
        &ctx(&c),
        &email,
        &digits(&code_at(&e, NOW, -10)),
        &digits(&code_at(&e, NOW, -9)),
    )
    .expect("resync");
    assert_eq!(
        r,
        Resynced {
            drift_steps: -9,
            period: 30,
            activated: true
        }
    );
    let s = list(&mut store).expect("list");
    assert_eq!((s[0].drift_steps, s[0].failed_attempts), (-9, 0));
    // The phone's next code verifies normally; its old ones are used up.
    verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, -8)).expect("next code");
    let old = verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, -9)).expect_err("used");
    assert_eq!(old.kind(), ErrorKind::Rejected);
}

#[test]
fn diagnose_explains_counts_wrong_codes_and_respects_the_lock() {
    let (_tmp, mut store, email) = setup();
    let c = FixedClock(NOW);
    let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
    verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 0)).expect("activate");
    let before = list(&mut store).expect("list");
    let ntp = NtpStatus::Unknown;
    let d =
        diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, -3), 10, ntp).expect("diagnose");
    assert_eq!(d.finding, Finding::Skewed { offset_steps: -3 });
    assert!(!d.would_accept);
    assert!(d.advice.contains("valid 90 s ago"), "{}", d.advice);
    assert!(d.advice.contains("90 s behind"), "{}", d.advice);
    let d =
        diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 0), 10, ntp).expect("diagnose");
    assert_eq!(d.finding, Finding::AlreadyUsed { offset_steps: 0 });
    let d =
        diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 1), 10, ntp).expect("diagnose");
    assert_eq!(
        (d.finding, d.would_accept),
        (Finding::Valid { offset_steps: 1 }, true)
    );
    let d = diagnose(
        &mut store,
        &ctx(&c),
        &email,
        &Code::Backup(e.backup_codes[0].clone()),
        10,
        ntp,
    )
    .expect("diagnose");
    assert_eq!(d.finding, Finding::BackupValid);
    // Nothing changed; the codes still work.
    assert_eq!(list(&mut store).expect("list"), before);
    // A code of the future beyond the window is never revealed, however
    // far the search reaches: it is a wrong code, and counted.
    let d = diagnose(
        &mut store,
        &ctx(&c),
        &email,
        &code_at(&e, NOW, 25),
        120,
        ntp,
    )
    .expect("diagnose");
    assert_eq!(d.finding, Finding::NoMatch);
    assert_eq!(d.failed_attempts, 1);
    assert!(d.advice.contains("counted as a wrong code"), "{}", d.advice);
    assert_eq!(list(&mut store).expect("list")[0].failed_attempts, 1);
    verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 1)).expect("still valid");
    verify(
        &mut store,
        &ctx(&c),
        &email,
        &Code::Backup(e.backup_codes[0].clone()),
    )
    .expect("unspent");
    // Locked: refused, not evaluated.
    for _ in 0..throttle::THRESHOLD {
        let _ = diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 40), 10, ntp);
    }
    let err =
        diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 1), 10, ntp).expect_err("locked");
    assert_eq!(err.kind(), ErrorKind::Locked);
    let log = audit_log(&mut store, Some(&email), None, 100).expect("audit");
    assert_eq!(
        log.iter().filter(|r| r.action == Action::Diagnose).count(),
        11
    );
}

#[test]
fn disable_removes_only_the_enrollment_that_was_shown() {
    let (_tmp, mut store, email) = setup();
    let c = FixedClock(NOW);
    enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
    let shown = state(&mut store, &email).expect("state").expect("enrolled");
    // Re-enrolled while the admin read the question, in the same second
    // (the row id is reused): the confirmation was for the old one.
    enable(&mut store, &ctx(&c), &email, "Mailborder", true).expect("re-enroll");
    let now = state(&mut store, &email).expect("state").expect("enrolled");
    assert_eq!(now.id, shown.id, "the row id is reused");
    let err = disable_shown(&mut store, &ctx(&c), &email, &shown).expect_err("stale");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(state(&mut store, &email).expect("state").is_some(), "kept");
    disable_shown(&mut store, &ctx(&c), &email, &now).expect("the shown one");
    assert!(state(&mut store, &email).expect("state").is_none());
    let err = disable_not_enrolled(&mut store, &ctx(&c), &email);
    assert_eq!(err.kind(), ErrorKind::NotEnrolled);
    let log = audit_log(&mut store, Some(&email), None, 10).expect("audit");
    assert_eq!(
        log.iter()
            .map(|r| r.outcome.as_str())
            .take(3)
            .collect::<Vec<_>>(),
        ["not_enrolled", "ok", "conflict"]
    );
}

#[test]
fn not_enrolled_is_recorded_only_if_still_true_at_commit() {
    let (_tmp, mut store, email) = setup();
    let clock = FixedClock(NOW);
    let c = ctx(&clock);
    // Nothing enrolled: exit 3, recorded.
    let err = disable_not_enrolled(&mut store, &c, &email);
    assert_eq!(err.kind(), ErrorKind::NotEnrolled);
    // Enrolled after the tool found nothing: nothing removed, exit 5.
    enable(&mut store, &c, &email, "Mailborder", false).expect("enable");
    let err = disable_not_enrolled(&mut store, &c, &email);
    assert_eq!(err.kind(), ErrorKind::Conflict, "{}", err.message());
    assert!(state(&mut store, &email).expect("state").is_some(), "kept");
    let log = audit_log(&mut store, Some(&email), None, 10).expect("audit");
    let outcomes: Vec<&str> = log.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["conflict", "ok", "not_enrolled"]);
}

#[test]
fn list_each_streams_in_email_order_with_exemptions_from_one_snapshot() {
    let (_tmp, mut store, _) = setup();
    let clock = FixedClock(NOW);
    let c = ctx(&clock);
    for name in ["carol", "alice", "bob"] {
        let email = Email::parse(&format!("{name}@example.com")).expect("email");
        enable(&mut store, &c, &email, "Mailborder", false).expect("enable");
    }
    let bob = Email::parse("bob@example.com").expect("email");
    crate::policy::exempt(
        &mut store,
        &c,
        &bob,
        crate::model::ExemptionKind::Service,
        "relay",
    )
    .expect("exempt");
    let mut seen = Vec::new();
    let exemptions = list_each(&mut store, NOW, |a, e| {
        seen.push((a, e.map(|e| e.kind)));
        Ok(())
    })
    .expect("list_each");
    assert_eq!(exemptions.len(), 1);
    assert_eq!(exemptions[0].email, "bob@example.com");
    let emails: Vec<&str> = seen.iter().map(|(a, _)| a.email.as_str()).collect();
    assert_eq!(
        emails,
        ["alice@example.com", "bob@example.com", "carol@example.com"]
    );
    let kinds: Vec<Option<&str>> = seen.iter().map(|(_, k)| k.map(|k| k.as_str())).collect();
    assert_eq!(kinds, [None, Some("service"), None]);
    let collected: Vec<AccountSummary> = seen.into_iter().map(|(a, _)| a).collect();
    assert_eq!(collected, list(&mut store).expect("list"));

    // The first error stops the walk and is returned.
    let mut calls = 0;
    let err = list_each(&mut store, NOW, |_, _| {
        calls += 1;
        Err(Error::storage("stop"))
    })
    .expect_err("stopped");
    assert_eq!((calls, err.message()), (1, "stop"));
}
