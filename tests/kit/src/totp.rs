//! The TOTP oracle: RFC 4226 / RFC 6238 written from the RFCs (HMAC-SHA1 from
//! the `hmac` and `sha1` crates, not the product's), and oathtool, the
//! implementation users already have.

use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// TOTP period of the product's defaults (seconds).
pub const PERIOD: u64 = 30;

/// RFC 4226 HOTP with HMAC-SHA1 and dynamic truncation, `digits` long.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    // RFC 4226 §5.4: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let binary = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    let modulus = 10u64.pow(digits);
    let value = u64::from(binary) % modulus;
    format!("{value:0width$}", width = digits as usize)
}

/// RFC 6238 TOTP (SHA1, 30 s, T0 = 0) at `unix` seconds.
pub fn totp_at(key: &[u8], unix: u64, digits: u32) -> String {
    hotp(key, unix / PERIOD, digits)
}

/// Decode an RFC 4648 base32 secret (padding and case tolerated).
pub fn decode_secret(secret_base32: &str) -> Vec<u8> {
    let clean = secret_base32
        .trim_end_matches('=')
        .to_ascii_uppercase()
        .replace(' ', "");
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &clean)
        .unwrap_or_else(|| panic!("not base32: {secret_base32:?}"))
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn shifted(offset_steps: i64) -> u64 {
    let delta = offset_steps * PERIOD as i64;
    now_unix().checked_add_signed(delta).expect("time in range")
}

/// The 6-digit code of the real current time shifted by `offset_steps` steps
/// (the binaries have no clock override; compute it just before running).
pub fn totp_now(secret_base32: &str, offset_steps: i64) -> String {
    totp_at(&decode_secret(secret_base32), shifted(offset_steps), 6)
}

/// The previous step's code, for activating an enrollment while the current
/// and next steps stay fresh. It is accepted only while the current step
/// lasts (a window of one step), so it is computed when at least
/// [`PREVIOUS_CODE_MARGIN_MS`] of the step remain, waiting for the next step
/// if needed: a loaded machine must not turn a step boundary between
/// computing and verifying into a rejected (and counted) code.
pub fn previous_step_code(secret_base32: &str) -> String {
    totp_at(&decode_secret(secret_base32), previous_step_time(), 6)
}

/// A Unix time in the previous step, with the same margin as
/// [`previous_step_code`] (for a test that also needs the step itself:
/// `previous_step_time() / PERIOD`).
pub fn previous_step_time() -> u64 {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let left_ms = PERIOD * 1000 - now_ms % (PERIOD * 1000);
    if left_ms < PREVIOUS_CODE_MARGIN_MS {
        std::thread::sleep(std::time::Duration::from_millis(left_ms + 50));
    }
    shifted(-1)
}

/// How much of the current step [`previous_step_code`] leaves for the tool
/// to run in.
pub const PREVIOUS_CODE_MARGIN_MS: u64 = 5000;

/// Run `round` until one run of it begins and ends in the same TOTP step,
/// and return what that run gave. The binaries read the real clock, so a
/// test that computes a code for "now" and has a tool check it right after
/// only means what it says when no step boundary fell in between: this makes
/// such a test independent of where in a step it starts, without waiting
/// for one. A round takes far less than a step, so a boundary falls in at
/// most one of two runs; each run must set up afresh (a new [`crate::Env`])
/// and must leave its checks to the caller.
#[track_caller]
pub fn in_one_step<T>(mut round: impl FnMut() -> T) -> T {
    for _ in 0..3 {
        let step = now_unix() / PERIOD;
        let out = round();
        if now_unix() / PERIOD == step {
            return out;
        }
    }
    panic!(
        "three runs in a row crossed a TOTP step boundary: a run must take far less than {PERIOD} s"
    );
}

/// A 6-digit code that matches none of the steps `-3..=3` around now: surely
/// wrong for the account, yet well-formed.
pub fn wrong_code(secret_base32: &str) -> String {
    let valid = codes_around_now(secret_base32);
    (0..1000u32)
        .map(|i| format!("{:06}", (i * 7919 + 271_828) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code exists")
}

/// `n` distinct well-formed 6-digit codes that match none of the steps
/// `-3..=3` around now for `secret_base32`.
pub fn wrong_codes(secret_base32: &str, n: usize) -> Vec<String> {
    let valid = codes_around_now(secret_base32);
    let codes: Vec<String> = (0..10_000u32)
        .map(|i| format!("{:06}", (i * 7919 + 314_159) % 1_000_000))
        .filter(|c| !valid.contains(c))
        .take(n)
        .collect();
    assert_eq!(codes.len(), n, "not enough wrong codes");
    codes
}

/// The 6-digit codes of the steps `-3..=3` around now: wider than any window
/// the tools accept a code in.
fn codes_around_now(secret_base32: &str) -> Vec<String> {
    let key = decode_secret(secret_base32);
    let now = now_unix();
    (-3i64..=3)
        .map(|o| {
            let t = now.checked_add_signed(o * PERIOD as i64).expect("time");
            totp_at(&key, t, 6)
        })
        .collect()
}

static OATHTOOL_NOTE: Once = Once::new();

/// The code `oathtool --totp -b SECRET` prints at now + `offset_steps` steps.
///
/// Policy when oathtool is not installed: with `CI` set in the environment
/// the test fails (CI must install the `oathtool` package, so the check stays
/// independent of this crate); without `CI` a note goes to stderr and the
/// built-in RFC 6238 reference stands in, so `cargo test --workspace` works
/// on a fresh machine.
pub fn oathtool(secret_base32: &str, offset_steps: i64) -> String {
    oathtool_at(secret_base32, shifted(offset_steps), 6)
}

/// `oathtool --totp -b -d DIGITS --now @UNIX SECRET` (same fallback policy).
pub fn oathtool_at(secret_base32: &str, unix: u64, digits: u32) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-d", &digits.to_string()])
        .arg("--now")
        .arg(format!("@{unix}"))
        .arg(secret_base32)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => {
            assert!(
                out.status.success(),
                "oathtool failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit()),
                "oathtool printed {code:?}"
            );
            code
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "oathtool is not installed, and CI is set: install the oathtool package \
                     (apt-get install oathtool) so codes are checked against an independent tool"
                );
            }
            OATHTOOL_NOTE.call_once(|| {
                eprintln!(
                    "note: oathtool not found; using the built-in RFC 6238 reference instead \
                     (install the oathtool package for a fully independent check)"
                );
            });
            totp_at(&decode_secret(secret_base32), unix, digits)
        }
        Err(e) => panic!("cannot run oathtool: {e}"),
    }
}
