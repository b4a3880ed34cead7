//! Property tests (proptest) of the core's input parsers and of the TOTP
//! window rule.
//!
//! For every parser: it never panics, whatever the string; a refusal is a
//! usage error (exit 2) with a one-line message; an accepted value is already
//! in normal form (parsing it again gives it back unchanged). For
//! `totp::check`: a code made for step `s` is accepted exactly when `s` is in
//! the window around the account's drift and later than its last accepted
//! step, and refused as a replay when it is in the window but used.
//!
//! `PROPTEST_CASES` sets the number of cases per property (default 256; see
//! docs/RELIABILITY.md for the counts that were run).

// Test helpers may panic: a failed check is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mb2fa_core::backup_codes::{self, BackupCode};
use mb2fa_core::clock::{parse_since, rfc3339};
use mb2fa_core::code::Code;
use mb2fa_core::crypto::{self, MasterKey};
use mb2fa_core::email::{self, Email};
use mb2fa_core::policy::{parse_reason, parse_role};
use mb2fa_core::secret::Secret;
use mb2fa_core::skew::{self, HISTORY, MAX_DRIFT};
use mb2fa_core::text;
use mb2fa_core::totp::{self, TotpCheck, TotpParams};
use mb2fa_core::{Error, uri};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A refusal must be a usage error (exit 2) with a non-empty one-line
/// message that starts with `prefix`.
fn usage_error(e: &Error, prefix: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.exit_code(), 2, "{:?}", e);
    prop_assert!(e.message().starts_with(prefix), "{:?}", e);
    prop_assert!(!e.message().contains('\n'), "multi-line: {:?}", e);
    Ok(())
}

/// Strings that stress the parsers: any Unicode, plus the characters that
/// matter to them (digits, the backup alphabet, '@', dots, dashes, spaces,
/// controls, bidi and invisible marks, SQL punctuation).
fn hostile() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        '0',
        '1',
        '5',
        '9',
        'a',
        'A',
        'z',
        'Z',
        'o',
        'O',
        'i',
        'I',
        'l',
        'L',
        'u',
        'U',
        '@',
        '.',
        '-',
        '_',
        ' ',
        '\t',
        '\n',
        '\r',
        '\0',
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{a0}',
        '\u{200b}',
        '\u{200e}',
        '\u{200f}',
        '\u{202e}',
        '\u{2066}',
        '\u{feff}',
        '\'',
        '"',
        ';',
        ':',
        '%',
        '\\',
        '/',
        'é',
        'ß',
        'İ',
        'K',
        '٣',
        '３',
        '\u{10ffff}',
    ]);
    prop_oneof![
        ".*",
        prop::collection::vec(interesting, 0..80).prop_map(|v| v.into_iter().collect()),
        prop::collection::vec(any::<char>(), 0..300).prop_map(|v| v.into_iter().collect()),
    ]
}

/// Plausible email addresses (the accepted side of the parser).
fn emailish() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9._%+'-]{1,64}",
        prop::collection::vec("[A-Za-z0-9-]{1,20}", 1..5),
        "[ \t]{0,2}",
        "[ \t\n]{0,2}",
    )
        .prop_map(|(local, labels, pre, post)| format!("{pre}{local}@{}{post}", labels.join(".")))
}

/// A backup code typed by a person: canonical characters, some turned into
/// their look-alikes or lower case, hyphens and spaces sprinkled in.
fn typed_backup_code() -> impl Strategy<Value = (String, String)> {
    (
        prop::collection::vec(
            prop::sample::select(CROCKFORD.chars().collect::<Vec<_>>()),
            12,
        ),
        prop::collection::vec((any::<bool>(), 0u8..4), 12),
    )
        .prop_map(|(chars, style)| {
            let canonical: String = chars.iter().collect();
            let mut typed = String::new();
            for (c, (lower, sep)) in chars.iter().zip(style) {
                let shown = match (*c, sep) {
                    ('0', 3) => 'O',
                    ('1', 3) => 'L',
                    ('1', 2) => 'i',
                    (c, _) if lower => c.to_ascii_lowercase(),
                    (c, _) => c,
                };
                typed.push(shown);
                match sep {
                    1 => typed.push('-'),
                    2 => typed.push(' '),
                    _ => {}
                }
            }
            (canonical, typed)
        })
}

/// A refusal of a code says what shape was expected, and nothing of the
/// input but its digit count: one of a few fixed messages.
fn fixed_code_message(message: &str) -> bool {
    const EXPECTED: &str =
        "expected a 6- or 8-digit code (an inner space is fine) or a backup code XXXX-XXXX-XXXX";
    let Some(rest) = message.strip_prefix("malformed code: ") else {
        return false;
    };
    let Some(why) = rest.strip_suffix(EXPECTED) else {
        return false;
    };
    let why = why.strip_suffix("; ").unwrap_or(why);
    matches!(
        why,
        "" | "too long" | "it is empty" | "it contains a control character"
    ) || why
        .strip_suffix(" digits")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

proptest! {
    // ---------------------------------------------------------------- email

    #[test]
    fn email_parse_never_panics_and_accepts_only_normal_forms(raw in hostile()) {
        match Email::parse(&raw) {
            Err(e) => usage_error(&e, "invalid email: ")?,
            Ok(e) => {
                let s = e.as_str();
                prop_assert_eq!(Email::parse(s).map(|e| e.as_str().to_string()), Ok(s.to_string()));
                // Lower-cased and NFC: canonically equal names are one account.
                let normal: String = raw.trim().to_lowercase().nfc().collect();
                prop_assert_eq!(s, normal.as_str());
                let allowed = |c: char| if c.is_ascii() {
                    c.is_ascii_alphanumeric() || "._+-@".contains(c)
                } else {
                    !text::is_unsafe_for_terminal(c)
                };
                prop_assert!(s.chars().all(allowed), "{:?}", s);
                prop_assert!(s.len() <= email::MAX_LEN);
                prop_assert_eq!(s.matches('@').count(), 1);
                prop_assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
                prop_assert!(!s.starts_with('-'));
            }
        }
    }

    #[test]
    fn email_parse_ignores_case_and_surrounding_blanks(raw in emailish()) {
        let got = Email::parse(&raw);
        // Case and blanks around it never change the answer.
        let shouted = Email::parse(&format!("  {}\n", raw.to_uppercase()));
        prop_assert_eq!(
            got.as_ref().map(Email::as_str).map_err(Error::exit_code),
            shouted.as_ref().map(Email::as_str).map_err(Error::exit_code)
        );
        if let Ok(e) = got {
            prop_assert_eq!(e.as_str(), raw.trim().to_lowercase());
        }
    }

    // ------------------------------------------------------- code, backup code

    #[test]
    fn code_parse_never_panics_and_never_echoes(raw in hostile()) {
        match Code::parse(&raw) {
            Err(e) => {
                usage_error(&e, "malformed code")?;
                // Nothing of the input but its digit count: never an echo.
                prop_assert!(fixed_code_message(e.message()), "{:?}", e);
            }
            Ok(Code::Totp(d)) => {
                prop_assert!(d.len() == 6 || d.len() == 8, "{:?}", d.len());
                prop_assert!(d.bytes().all(|b| b.is_ascii_digit()));
                let compact: String = raw.trim().chars().filter(|c| *c != ' ').collect();
                prop_assert_eq!(d.as_str(), compact);
                // Normal form: parses back to itself.
                prop_assert!(matches!(Code::parse(&d), Ok(Code::Totp(ref again)) if **again == *d));
            }
            Ok(Code::Backup(b)) => {
                prop_assert_eq!(b.as_str().len(), backup_codes::LEN);
                prop_assert!(b.as_str().chars().all(|c| CROCKFORD.contains(c)));
                prop_assert_eq!(BackupCode::parse(&b.formatted()), Some(b.clone()));
                prop_assert_eq!(BackupCode::parse(raw.trim()), Some(b));
            }
        }
    }

    #[test]
    fn six_digits_with_blanks_are_a_totp_code(
        digits in "[0-9]{6}",
        split in 1usize..6,
        pad in "[ \t\n]{0,3}",
    ) {
        for typed in [
            digits.clone(),
            format!("{}{}", pad, digits),
            format!("{} {}", &digits[..split], &digits[split..]),
        ] {
            let parsed = Code::parse(&typed);
            prop_assert!(matches!(parsed, Ok(Code::Totp(ref d)) if **d == digits), "{:?}", typed);
        }
    }

    #[test]
    fn other_digit_counts_are_usage_errors(pick in 0usize..37) {
        // 0..40 without 6, 8 and 12 (TOTP codes, and the digits of a backup code).
        let n = pick + usize::from(pick >= 6) + usize::from(pick >= 7) + usize::from(pick >= 10);
        let raw = "7".repeat(n);
        let e = Code::parse(&raw).expect_err("not 6 digits");
        usage_error(&e, "malformed code")?;
    }

    #[test]
    fn backup_code_parse_never_panics_and_round_trips(raw in hostile()) {
        if let Some(b) = BackupCode::parse(&raw) {
            prop_assert_eq!(b.as_str().len(), backup_codes::LEN);
            prop_assert!(b.as_str().chars().all(|c| CROCKFORD.contains(c)));
            prop_assert_eq!(BackupCode::parse(b.as_str()), Some(b.clone()));
            prop_assert_eq!(BackupCode::parse(&b.formatted()), Some(b.clone()));
            prop_assert_eq!(BackupCode::parse(&b.as_str().to_lowercase()), Some(b));
        }
    }

    #[test]
    fn typed_backup_codes_normalise_to_the_code(case in typed_backup_code()) {
        let (canonical, typed) = case;
        let parsed = BackupCode::parse(&typed).expect("a typed backup code parses");
        prop_assert_eq!(parsed.as_str(), canonical.as_str());
        let code = Code::parse(&typed);
        prop_assert!(
            matches!(code, Ok(Code::Backup(ref b)) if b.as_str() == canonical),
            "{:?} -> {:?}", typed, code
        );
    }

    #[test]
    fn one_character_outside_the_alphabet_is_refused(
        case in typed_backup_code(),
        at in 0usize..12,
        bad in prop::sample::select(vec!['U', 'u', '!', '*', 'é', '#', '_', '+', '\u{200b}']),
    ) {
        let (canonical, _) = case;
        let mut chars: Vec<char> = canonical.chars().collect();
        chars[at] = bad;
        let typed: String = chars.into_iter().collect();
        prop_assert_eq!(BackupCode::parse(&typed), None);
        let e = Code::parse(&typed).expect_err("one bad character");
        usage_error(&e, "malformed code")?;
    }

    // ------------------------------------------------- issuer, role, reason

    #[test]
    fn issuer_never_panics_and_accepts_only_normal_forms(raw in hostile()) {
        match uri::parse_issuer(&raw) {
            Err(e) => usage_error(&e, "invalid issuer")?,
            Ok(s) => {
                prop_assert_eq!(uri::parse_issuer(&s), Ok(s.clone()));
                prop_assert_eq!(s.as_str(), raw.trim());
                prop_assert!(!s.is_empty() && s.chars().count() <= uri::MAX_ISSUER_LEN);
                prop_assert!(!s.contains(':') && !s.chars().any(char::is_control));
                prop_assert!(!s.chars().any(text::is_unsafe_for_terminal));
            }
        }
    }

    #[test]
    fn role_never_panics_and_accepts_only_normal_forms(raw in hostile()) {
        match parse_role(&raw) {
            Err(e) => usage_error(&e, "invalid role")?,
            Ok(r) => {
                prop_assert_eq!(parse_role(&r), Ok(r.clone()));
                prop_assert!(!r.is_empty() && r.len() <= 64);
                prop_assert!(r.chars().all(|c| c.is_ascii_lowercase()
                    || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')));
            }
        }
    }

    #[test]
    fn reason_never_panics_and_accepts_only_normal_forms(raw in hostile()) {
        match parse_reason(&raw) {
            Err(e) => usage_error(&e, "invalid reason")?,
            Ok(r) => {
                prop_assert_eq!(parse_reason(&r), Ok(r.clone()));
                prop_assert_eq!(r.as_str(), raw.trim());
                prop_assert!(!r.is_empty() && r.chars().count() <= 200);
                prop_assert!(!r.chars().any(char::is_control));
                prop_assert!(!r.chars().any(text::is_unsafe_for_terminal));
            }
        }
    }

    // ---------------------------------------------------------------- since

    #[test]
    fn since_never_panics_and_is_a_time_or_a_span(
        raw in hostile(),
        now in 0i64..=4_102_444_800,
        later in 1i64..1_000_000,
    ) {
        match (parse_since(&raw, now), parse_since(&raw, now + later)) {
            (Err(e), Err(_)) => usage_error(&e, "invalid --since")?,
            // A time does not depend on now; a span moves with it.
            (Ok(a), Ok(b)) => prop_assert!(b == a || b == a + later, "{} {}", a, b),
            (a, b) => prop_assert!(false, "{:?} then {:?}", a, b),
        }
    }

    #[test]
    fn since_round_trips_a_time(t in 0i64..=253_402_300_799, now in 0i64..=4_102_444_800) {
        let shown = rfc3339(t);
        prop_assert_eq!(parse_since(&shown, now), Ok(t), "{}", shown);
        prop_assert_eq!(parse_since(&format!(" {} ", shown.trim_end_matches('Z')), now), Ok(t));
    }

    #[test]
    fn since_span_goes_back_from_now(n in 0u64..100_000, unit in 0usize..4, now in 0i64..=4_102_444_800) {
        let (suffix, secs) = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400)][unit];
        let got = parse_since(&format!("{n}{suffix}"), now).expect("a span");
        prop_assert_eq!(got, now.saturating_sub(i64::try_from(n * secs).unwrap()));
    }

    // -------------------------------------------------- sealed secrets at rest

    #[test]
    fn opening_stored_bytes_never_panics(
        key in prop::array::uniform32(any::<u8>()),
        stored in prop::collection::vec(any::<u8>(), 0..100),
        email in "[a-z]{1,8}@example\\.com",
        created_at in any::<i64>(),
    ) {
        let key = MasterKey::from_bytes(&key).expect("32 bytes");
        // Random bytes are never a valid sealed secret: refused as damage (exit 10).
        let e = crypto::open(&key, &stored, &email, created_at).expect_err("forged");
        prop_assert_eq!(e.exit_code(), 10, "{:?}", e);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account(
        key in prop::array::uniform32(any::<u8>()),
        raw in prop::collection::vec(any::<u8>(), 20),
        flip in 0usize..61,
        created_at in 0i64..4_102_444_800,
    ) {
        let key = MasterKey::from_bytes(&key).expect("32 bytes");
        let secret = Secret::from_bytes(raw.clone());
        let sealed = crypto::seal(&key, &secret, "alice@example.com", created_at).expect("seal");
        prop_assert_eq!(sealed.len(), 61);
        let opened = crypto::open(&key, &sealed, "alice@example.com", created_at).expect("open");
        prop_assert_eq!(opened.as_bytes(), raw.as_slice());
        let moved = crypto::open(&key, &sealed, "bob@example.com", created_at);
        prop_assert_eq!(moved.map(|_| ()).map_err(|e| e.exit_code()), Err(10));
        let mut damaged = sealed.clone();
        damaged[flip] ^= 0x01;
        let opened = crypto::open(&key, &damaged, "alice@example.com", created_at);
        prop_assert_eq!(opened.map(|_| ()).map_err(|e| e.exit_code()), Err(10));
    }
}

// ------------------------------------------------------------------- TOTP

/// Everything `totp::check` is given, with the step `s` the code is made for.
#[derive(Debug, Clone)]
struct Case {
    secret: Vec<u8>,
    now: i64,
    drift: i64,
    window: i64,
    /// Offset of `s` from the centre of the window (now's step + drift).
    from_centre: i64,
    /// The account's last accepted step, relative to `s` (None: never used).
    last_from_s: Option<i64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(any::<u8>(), 20),
        // From 1970 (step 0 and its edge) to beyond 2106.
        prop_oneof![1 => Just(0i64), 1 => Just(29), 1 => Just(30), 30 => 0i64..5_000_000_000],
        -MAX_DRIFT..=MAX_DRIFT,
        0i64..=3,
        -6i64..=6,
        prop::option::of(-4i64..=4),
    )
        .prop_map(
            |(secret, now, drift, window, from_centre, last_from_s)| Case {
                secret,
                now,
                drift,
                window,
                from_centre,
                last_from_s,
            },
        )
}

proptest! {
    #[test]
    fn verify_accepts_iff_the_step_is_in_the_window_and_unused(c in case()) {
        let p = TotpParams::default();
        let secret = Secret::from_bytes(c.secret.clone());
        let now_step = p.step_at(c.now);
        let centre = now_step + c.drift;
        let s = centre + c.from_centre;
        if s < 0 {
            // No code exists before the epoch; nothing to check here.
            return Ok(());
        }
        let last = c.last_from_s.map(|d| s + d);
        let code = totp::code_for_step(&secret, &p, s);
        // A 6-digit code repeats about once in 10^6 steps: skip the rare case
        // where another step of the window shares it.
        let shared = ((centre - c.window)..=(centre + c.window))
            .filter(|t| *t != s && *t >= 0)
            .any(|t| *totp::code_for_step(&secret, &p, t) == *code);
        prop_assume!(!shared);

        let got = totp::check(&secret, &p, &code, c.now, c.drift, c.window, last);
        let in_window = c.from_centre.abs() <= c.window;
        let unused = last.is_none_or(|l| s > l);
        let want = match (in_window, unused) {
            (true, true) => TotpCheck::Accepted { step: s, offset_steps: s - now_step },
            (true, false) => TotpCheck::Replayed { step: s },
            (false, _) => TotpCheck::NoMatch,
        };
        prop_assert_eq!(got, want);

        // Once accepted, the same code (and so the same step) never again.
        if let TotpCheck::Accepted { step, .. } = got {
            let again = totp::check(&secret, &p, &code, c.now, c.drift, c.window, Some(step));
            prop_assert_eq!(again, TotpCheck::Replayed { step });
        }
    }

    #[test]
    fn a_code_of_another_length_or_secret_never_matches(
        c in case(),
        other in prop::collection::vec(any::<u8>(), 20),
        cut in 0usize..6,
    ) {
        prop_assume!(other != c.secret);
        let p = TotpParams::default();
        let secret = Secret::from_bytes(c.secret.clone());
        let s = p.step_at(c.now) + c.drift;
        let code = totp::code_for_step(&secret, &p, s.max(0));
        // A prefix or an extension of a right code never matches.
        let short = &code[..cut];
        prop_assert_eq!(totp::check(&secret, &p, short, c.now, c.drift, c.window, None), TotpCheck::NoMatch);
        let long = format!("{}0", code.as_str());
        prop_assert_eq!(totp::check(&secret, &p, &long, c.now, c.drift, c.window, None), TotpCheck::NoMatch);
        // The code of another secret matches only by a 6-digit coincidence.
        let foreign = totp::code_for_step(&Secret::from_bytes(other.clone()), &p, s.max(0));
        let coincidence = ((s - c.window)..=(s + c.window))
            .filter(|t| *t >= 0)
            .any(|t| *totp::code_for_step(&secret, &p, t) == *foreign);
        prop_assume!(!coincidence);
        prop_assert_eq!(totp::check(&secret, &p, &foreign, c.now, c.drift, c.window, None), TotpCheck::NoMatch);
    }

    // ---------------------------------------------------------------- skew

    #[test]
    fn learned_drift_stays_bounded_and_moves_only_on_agreement(
        history in prop::collection::vec(-1000i64..1000, 0..6),
        drift in -MAX_DRIFT..=MAX_DRIFT,
        offset in -1000i64..1000,
    ) {
        let (recent, new) = skew::learn(&history, drift, offset);
        prop_assert!(new.abs() <= MAX_DRIFT, "drift {new}");
        prop_assert!(recent.len() <= HISTORY && !recent.is_empty());
        prop_assert_eq!(recent.last(), Some(&offset));
        // The kept history is the tail of history + [offset].
        let mut all = history.clone();
        all.push(offset);
        prop_assert_eq!(recent.as_slice(), &all[all.len() - recent.len()..]);
        let agreed = recent.len() == HISTORY && recent.iter().all(|o| *o == offset);
        if agreed {
            prop_assert_eq!(new, offset.clamp(-MAX_DRIFT, MAX_DRIFT));
        } else {
            prop_assert_eq!(new, drift, "one outlier moved the drift");
        }
        // The history survives its storage format.
        prop_assert_eq!(skew::parse_history(&skew::format_history(&recent)), recent);
    }

    #[test]
    fn a_run_of_learning_never_leaves_the_bound(
        offsets in prop::collection::vec(-1000i64..1000, 0..40),
    ) {
        let (mut history, mut drift) = (Vec::new(), 0i64);
        for o in offsets {
            (history, drift) = skew::learn(&history, drift, o);
            prop_assert!(drift.abs() <= MAX_DRIFT);
        }
    }

    #[test]
    fn stored_history_parsing_never_panics(raw in hostile()) {
        let parsed = skew::parse_history(&raw);
        prop_assert!(parsed.len() <= raw.len());
    }
}
