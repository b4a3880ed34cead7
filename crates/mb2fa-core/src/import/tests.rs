//! The import operation on a real SQLite store, with a fixed clock, and
//! verification of what it stored.

use super::*;
use crate::account::{self, Method};
use crate::clock::FixedClock;
use crate::code::Code;
use crate::error::ErrorKind;
use crate::store::{Location, OpenMode};
use crate::totp::{self, Algorithm};

const NOW: i64 = 1_800_000_015;

fn setup() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut store =
        Store::open(&Location::Sqlite(tmp.path().join("2fa.db")), OpenMode::Init).expect("open");
    store.unlock(&tmp.path().join("2fa.key")).expect("key");
    (tmp, store)
}

fn ctx(clock: &FixedClock) -> Ctx<'_> {
    Ctx::for_tests(clock)
}

fn alice() -> Email {
    Email::parse("alice@example.com").expect("email")
}

fn ga_file(floor_step: i64) -> String {
    format!(
        "LGR6H2MEWKTWUXUH5IITIMO4NI\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\
         \" DISALLOW_REUSE {floor_step}\n\" TOTP_AUTH\n84308363\n22707427\n"
    )
}

fn code_at(secret: &str, params: &TotpParams, step: i64) -> Code {
    let s = Secret::from_bytes(Secret::decode_base32(secret).expect("b32").to_vec());
    Code::parse(&totp::code_for_step(&s, params, step)).expect("shape")
}

#[test]
fn google_authenticator_floor_and_scratch_codes() {
    let (_tmp, mut store) = setup();
    let clock = FixedClock(NOW);
    let ctx = ctx(&clock);
    let p = TotpParams::default();
    let now_step = p.step_at(NOW);
    let entry =
        google_authenticator::parse(ga_file(now_step).as_bytes(), "F", &alice()).expect("parse");
    let done = import(
        &mut store,
        &ctx,
        Source::GoogleAuthenticator,
        "F",
        vec![entry],
        false,
        false,
    )
    .expect("import");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].replay_floor, Some(now_step));
    assert_eq!(done[0].backup_codes, 2);
    assert_eq!(done[0].issuer, "Mailborder");
    let email = alice();
    assert_eq!(
        account::state(&mut store, &email)
            .expect("state")
            .map(|r| r.state),
        Some(State::Active)
    );
    let secret = "LGR6H2MEWKTWUXUH5IITIMO4NI";
    // The floor's step is used: a replay, not counted.
    let e = account::verify(&mut store, &ctx, &email, &code_at(secret, &p, now_step))
        .expect_err("floor");
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(e.message().contains("already used"), "{}", e.message());
    let v = account::verify(&mut store, &ctx, &email, &code_at(secret, &p, now_step + 1))
        .expect("next step");
    assert_eq!((v.method, v.activated), (Method::Totp, false));
    // A scratch code works once, as a backup code.
    let scratch = Code::parse("8430 8363").expect("8 digits");
    let v = account::verify(&mut store, &ctx, &email, &scratch).expect("scratch");
    assert_eq!((v.method, v.backup_codes_left), (Method::BackupCode, 1));
    let e = account::verify(&mut store, &ctx, &email, &scratch).expect_err("twice");
    assert_eq!(e.kind(), ErrorKind::Rejected);
    // An 8-digit string that is no scratch code is a wrong code, counted.
    let e = account::verify(
        &mut store,
        &ctx,
        &email,
        &Code::parse("11112222").expect("8"),
    )
    .expect_err("unknown");
    assert_eq!(e.kind(), ErrorKind::Rejected);
    let records = account::audit_log(&mut store, Some(&email), None, 10).expect("audit");
    let import = records
        .iter()
        .find(|r| r.action == Action::Import)
        .expect("record");
    assert_eq!(import.outcome, Outcome::Ok);
    assert!(
        import.detail.contains("google-authenticator"),
        "{}",
        import.detail
    );
    for r in &records {
        assert!(!r.detail.contains("LGR6H2ME") && !r.detail.contains("84308363"));
    }
}

#[test]
fn otpauth_parameters_verify_and_digits_decide_the_shape() {
    let (_tmp, mut store) = setup();
    let clock = FixedClock(NOW);
    let ctx = ctx(&clock);
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let input = format!(
        "otpauth://totp/X:alice@example.com?secret={secret}&algorithm=SHA512&digits=8&period=60\n"
    );
    let entries = otpauth::parse(input.as_bytes(), "stdin", None).expect("parse");
    import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        entries,
        false,
        false,
    )
    .expect("import");
    let p = TotpParams {
        algorithm: Algorithm::Sha512,
        digits: 8,
        period: 60,
    };
    let email = alice();
    // A 6-digit code is malformed for this enrollment (exit 2), not counted.
    let e = account::verify(&mut store, &ctx, &email, &Code::parse("123456").expect("6"))
        .expect_err("6 digits");
    assert_eq!(e.exit_code(), 2);
    assert!(e.message().contains("have 8 digits"), "{}", e.message());
    let v = account::verify(
        &mut store,
        &ctx,
        &email,
        &code_at(secret, &p, p.step_at(NOW)),
    )
    .expect("8-digit SHA512 code");
    assert_eq!(v.period, Some(60));
    let e = account::verify(
        &mut store,
        &ctx,
        &email,
        &code_at(secret, &p, p.step_at(NOW)),
    )
    .expect_err("replay");
    assert_eq!(e.kind(), ErrorKind::Rejected);
}

#[test]
fn conflicts_force_and_dry_run() {
    let (_tmp, mut store) = setup();
    let clock = FixedClock(NOW);
    let ctx = ctx(&clock);
    let email = alice();
    account::enable(&mut store, &ctx, &email, "Mailborder", false).expect("enable");
    let uris = "otpauth://totp/bob@example.com?secret=JBSWY3DPEHPK3PXP\n\
                otpauth://totp/alice@example.com?secret=JBSWY3DPEHPK3PXP\n";
    let parse = || otpauth::parse(uris.as_bytes(), "stdin", None).expect("parse");
    let e = import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        parse(),
        false,
        true,
    )
    .expect_err("dry conflict");
    assert_eq!(e.exit_code(), 5);
    let e = import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        parse(),
        false,
        false,
    )
    .expect_err("conflict");
    assert_eq!(e.exit_code(), 5);
    assert!(
        e.message().contains("alice@example.com (pending, line 2)"),
        "{}",
        e.message()
    );
    // All or nothing: bob was not imported either.
    let bob = Email::parse("bob@example.com").expect("email");
    assert_eq!(account::state(&mut store, &bob).expect("state"), None);
    let plan = import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        parse(),
        true,
        true,
    )
    .expect("dry run");
    assert_eq!(plan[1].replaced, Some(State::Pending));
    assert_eq!(account::state(&mut store, &bob).expect("state"), None);
    let done = import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        parse(),
        true,
        false,
    )
    .expect("force");
    assert_eq!(done[1].replaced, Some(State::Pending));
    assert_eq!(
        account::state(&mut store, &email)
            .expect("state")
            .map(|r| r.state),
        Some(State::Active)
    );
    let records = account::audit_log(&mut store, Some(&email), None, 10).expect("audit");
    assert!(
        records
            .iter()
            .any(|r| r.action == Action::Import && r.outcome == Outcome::Conflict)
    );
    assert!(records.iter().any(|r| {
        r.action == Action::Import
            && r.detail
                .contains("replaced the pending enrollment (--force)")
    }));
}

#[test]
fn run_wide_checks() {
    let (_tmp, mut store) = setup();
    let clock = FixedClock(NOW);
    let ctx = ctx(&clock);
    let twice = "otpauth://totp/a@example.com?secret=JBSWY3DPEHPK3PXP\n\
                 otpauth://totp/A@example.com?secret=JBSWY3DPEHPK3PXQ\n";
    let entries = otpauth::parse(twice.as_bytes(), "stdin", None).expect("parse");
    let e = import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        entries,
        false,
        false,
    )
    .expect_err("twice");
    assert!(
        e.message()
            .contains("stdin line 2: a@example.com is imported on line 1 already")
    );
    let future = TotpParams::default().step_at(NOW) + 100;
    let entry =
        google_authenticator::parse(ga_file(future).as_bytes(), "F", &alice()).expect("parse");
    let e = import(
        &mut store,
        &ctx,
        Source::GoogleAuthenticator,
        "F",
        vec![entry],
        false,
        false,
    )
    .expect_err("future");
    assert!(
        e.message()
            .contains("F line 4: a used step lies in the future"),
        "{}",
        e.message()
    );
    let e = import(
        &mut store,
        &ctx,
        Source::Otpauth,
        "stdin",
        Vec::new(),
        false,
        false,
    )
    .expect_err("empty");
    assert_eq!(e.exit_code(), 2);
    assert!(store.read(|tx| tx.count_accounts()).expect("count") == 0);
}
