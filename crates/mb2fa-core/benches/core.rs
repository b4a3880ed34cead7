//! Benchmarks of the core's hot paths, cited by name in docs/BENCHMARKS.md:
//! keep the group/function names stable.
//!
//! Run: `cargo bench -p mb2fa-core --bench core`
//! (quicker: `... -- --warm-up-time 1 --measurement-time 3`).
//!
//! Everything goes through the public API, as the tools call it.

// Test code: a failed setup should stop the run loudly (clippy.toml allows
// these in tests, but a `harness = false` bench is not compiled as a test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tempfile::TempDir;

use mb2fa_core::account::{self, Ctx};
use mb2fa_core::backup_codes::{self, BackupCode};
use mb2fa_core::clock::{Clock, FixedClock};
use mb2fa_core::code::Code;
use mb2fa_core::crypto::{self, MasterKey};
use mb2fa_core::email::Email;
use mb2fa_core::model::NewAccount;
use mb2fa_core::qr::{Matrix, Render, Style};
use mb2fa_core::secret::Secret;
use mb2fa_core::store::{Location, OpenMode, Store};
use mb2fa_core::totp::{self, DEFAULT_WINDOW, TotpCheck, TotpParams};
use mb2fa_core::uri::{self, DEFAULT_ISSUER};

/// Mid-step, so the window is the plain ±1 steps around it.
const NOW: i64 = 1_700_000_015;
const EMAIL: &str = "alice@example.com";
/// The RFC 6238 test secret: 20 bytes, the length the tools generate.
const SECRET: &[u8] = b"12345678901234567890";

fn secret() -> Secret {
    Secret::from_bytes(SECRET.to_vec())
}

fn bench_totp(c: &mut Criterion) {
    let secret = secret();
    let params = TotpParams::default(); // SHA1, 6 digits, 30 s
    let now = FixedClock(NOW).now().expect("fixed clock");
    let step = params.step_at(now);
    let good = totp::code_for_step(&secret, &params, step);
    // A 6-digit code that matches no step of the window, so every candidate
    // is computed and none accepted.
    let window: Vec<_> = ((step - DEFAULT_WINDOW)..=(step + DEFAULT_WINDOW))
        .map(|s| totp::code_for_step(&secret, &params, s))
        .collect();
    let wrong = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| window.iter().all(|w| w.as_str() != c))
        .expect("a code outside the window");

    let accepted = totp::check(&secret, &params, &good, now, 0, DEFAULT_WINDOW, None);
    assert_eq!(
        accepted,
        TotpCheck::Accepted {
            step,
            offset_steps: 0
        }
    );
    let missed = totp::check(&secret, &params, &wrong, now, 0, DEFAULT_WINDOW, None);
    assert_eq!(missed, TotpCheck::NoMatch);

    let mut g = c.benchmark_group("totp");
    g.bench_function("verify_current", |b| {
        b.iter(|| {
            totp::check(
                black_box(&secret),
                black_box(&params),
                black_box(good.as_str()),
                black_box(now),
                0,
                DEFAULT_WINDOW,
                None,
            )
        });
    });
    g.bench_function("verify_wrong", |b| {
        b.iter(|| {
            totp::check(
                black_box(&secret),
                black_box(&params),
                black_box(wrong.as_str()),
                black_box(now),
                0,
                DEFAULT_WINDOW,
                None,
            )
        });
    });
    g.finish();
}

fn bench_backup_codes(c: &mut Criterion) {
    let code = BackupCode::parse("ABCD-0123-WXYZ").expect("a backup code");
    let phc = code.hash().expect("hash");
    assert!(code.matches(&phc).expect("readable hash"));

    let mut g = c.benchmark_group("backup_code");
    g.bench_function("tag", |b| b.iter(|| black_box(&code).tag()));
    // argon2id (m=19456 KiB, t=2, p=1) takes tens of milliseconds: few samples,
    // one iteration each.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    // One bare argon2id evaluation (plus a random salt and PHC encoding).
    g.bench_function("hash", |b| b.iter(|| black_box(&code).hash()));
    g.bench_function("verify_hit", |b| {
        b.iter(|| black_box(&code).matches(black_box(&phc)));
    });
    // What enrollment and regeneration pay: 10 codes, 10 hashes.
    g.bench_function("generate_set", |b| b.iter(backup_codes::generate_set));
    g.finish();
}

fn bench_crypto(c: &mut Criterion) {
    let key = MasterKey::generate().expect("rng");
    let secret = secret();
    let sealed = crypto::seal(&key, &secret, EMAIL, NOW).expect("seal");
    assert_eq!(
        crypto::open(&key, &sealed, EMAIL, NOW)
            .expect("open")
            .as_bytes(),
        SECRET
    );

    let mut g = c.benchmark_group("crypto");
    g.bench_function("seal", |b| {
        b.iter(|| crypto::seal(black_box(&key), black_box(&secret), EMAIL, NOW));
    });
    g.bench_function("open", |b| {
        b.iter(|| crypto::open(black_box(&key), black_box(&sealed), EMAIL, NOW));
    });
    g.finish();
}

fn bench_uri_and_qr(c: &mut Criterion) {
    let secret = secret();
    let params = TotpParams::default();
    let typical = uri::otpauth_uri(DEFAULT_ISSUER, EMAIL, &secret, &params);
    // What mb-2fa-enable prints on a terminal: half blocks, in colour.
    let render = Render {
        style: Style::Unicode,
        color: true,
        invert: false,
    };

    let mut g = c.benchmark_group("uri");
    g.bench_function("otpauth", |b| {
        b.iter(|| uri::otpauth_uri(DEFAULT_ISSUER, black_box(EMAIL), &secret, &params));
    });
    g.finish();

    let mut g = c.benchmark_group("qr");
    // The matrix alone (segmenting, two candidate encodings, masking)...
    g.bench_function("encode", |b| {
        b.iter(|| Matrix::encode(black_box(typical.as_str())));
    });
    // ...and with the art drawn from it: what mb-2fa-enable does.
    g.bench_function("render_terminal", |b| {
        b.iter(|| {
            Matrix::encode(black_box(typical.as_str()))
                .expect("fits a QR code")
                .render(render)
        });
    });
    g.finish();
}

/// A database of `n` accounts (`user00000@example.com`, ...) in a temporary
/// directory, with its key file there too, unlocked and ready to read.
fn store_with(n: usize) -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db: &Path = &dir.path().join("2fa.db");
    let mut store =
        Store::open(&Location::Sqlite(db.to_path_buf()), OpenMode::Init).expect("open store");
    store.unlock(&dir.path().join("2fa.key")).expect("unlock");
    let params = TotpParams::default();
    store
        .write(|tx| {
            for i in 0..n {
                let secret = Secret::generate()?;
                tx.insert_account(&NewAccount {
                    email: &format!("user{i:05}@example.com"),
                    secret: &secret,
                    params,
                    issuer: DEFAULT_ISSUER,
                    created_at: NOW,
                })?;
            }
            Ok(())
        })
        .expect("insert accounts");
    (dir, store)
}

fn bench_store(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    for (name, n) in [("lookup_1k", 1_000), ("lookup_10k", 10_000)] {
        let (_dir, mut store) = store_with(n);
        // One in the middle of the email index.
        let email = format!("user{:05}@example.com", n / 2);
        let found = store.read(|tx| tx.account(&email)).expect("read");
        assert_eq!(found.map(|a| a.email), Some(email.clone()));
        g.bench_function(name, |b| {
            b.iter(|| store.read(|tx| tx.account(black_box(&email))));
        });
    }
    g.finish();
}

/// What a resident verifier (one process keeping the database open) would
/// pay per login: `account::verify` of a fresh TOTP code on a database on
/// disk, with its write transaction and its one fsync, as `mb-2fa-verify`
/// does it minus process start-up and opening the database.
fn bench_resident_verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(
        &Location::Sqlite(dir.path().join("2fa.db").to_path_buf()),
        OpenMode::Init,
    )
    .expect("open store");
    store.unlock(&dir.path().join("2fa.key")).expect("unlock");
    let email = Email::parse(EMAIL).expect("email");
    let start = FixedClock(NOW);
    let setup = Ctx {
        clock: &start,
        tool: "bench",
        actor: "bench".into(),
        via: None,
    };
    let e = account::enable(&mut store, &setup, &email, DEFAULT_ISSUER, false).expect("enable");
    store.tune_for_logins();
    let mut now = NOW;
    c.bench_function("account/verify_totp_resident", |b| {
        b.iter(|| {
            // Every login is a new 30 s step, as in real life.
            now += 30;
            let clock = FixedClock(now);
            let ctx = Ctx {
                clock: &clock,
                tool: "bench",
                actor: "bench".into(),
                via: None,
            };
            let code = totp::code_for_step(&e.secret, &e.params, e.params.step_at(now));
            let code = Code::parse(&code).expect("code");
            let v = account::verify(&mut store, &ctx, &email, &code).expect("verified");
            black_box(v)
        });
    });
}

criterion_group!(
    benches,
    bench_totp,
    bench_backup_codes,
    bench_crypto,
    bench_uri_and_qr,
    bench_store,
    bench_resident_verify
);
criterion_main!(benches);
