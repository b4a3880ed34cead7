//! The `~/.google_authenticator` file of google-authenticator-libpam:
//!
//! ```text
//! LGR6H2MEWKTWUXUH5IITIMO4NI          line 1: the secret, base32
//! " RATE_LIMIT 3 30 1701950000        option lines: `" NAME [values]`
//! " WINDOW_SIZE 3
//! " DISALLOW_REUSE 56731650 56731651  steps already used
//! " TOTP_AUTH
//! 84308363                            scratch codes, 8 digits, one a line
//! ```
//!
//! What is kept: the secret at its length, the period (`STEP_SIZE`, 30 s
//! when absent), the replay floor (the highest `DISALLOW_REUSE` step), and
//! the scratch codes, which become single-use backup codes. What our rules
//! replace: `WINDOW_SIZE` (the window is ±1 step, centred on the learned
//! drift), `RATE_LIMIT` (the lockout), `TIME_SKEW` and `RESETTING_TIME_SKEW`
//! (the drift is learned again). The file has no digits or algorithm: the
//! module always uses SHA1 and 6 digits. A `HOTP_COUNTER` line (a
//! counter-based file) is refused: HOTP is not supported.

use crate::backup_codes::{self, BackupCode, SCRATCH_LEN};
use crate::email::Email;
use crate::error::Result;
use crate::secret::Secret;
use crate::totp::TotpParams;

use super::input::{at, lines};
use super::{Entry, Floor};

/// Periods google-authenticator accepts for `STEP_SIZE` (its `-S` option).
const STEP_SIZES: std::ops::RangeInclusive<u32> = 1..=60;
/// Window sizes it accepts (`-w`).
const WINDOW_SIZES: std::ops::RangeInclusive<u64> = 1..=21;

/// Parse the file `input` (named `name` in messages) for `email`.
pub fn parse(input: &[u8], name: &str, email: &Email) -> Result<Entry> {
    let lines = lines(input, name, false)?;
    let mut iter = lines.iter().copied();
    let Some((_, first)) = iter.next() else {
        return Err(at(name, 1, "the file is empty (line 1 must be the secret)"));
    };
    if first.is_empty() || first.starts_with('"') {
        return Err(at(name, 1, "line 1 must be the secret (base32)"));
    }
    let bytes = Secret::decode_base32(first)
        .ok_or_else(|| at(name, 1, "the secret is not base32 (RFC 4648: A-Z and 2-7)"))?;
    let secret = Secret::imported(bytes).map_err(|why| at(name, 1, why))?;

    let mut period: Option<u32> = None;
    let mut floor: Option<Floor> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut scratch: Vec<(usize, BackupCode)> = Vec::new();
    for (n, line) in iter {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(option) = line.strip_prefix("\" ") {
            let mut words = option.split_ascii_whitespace();
            let Some(option_name) = words.next() else {
                return Err(at(name, n, "an option line without an option name"));
            };
            let values: Vec<&str> = words.collect();
            let numbers = || numbers(name, n, option_name, &values);
            let known = match option_name {
                "TOTP_AUTH" => {
                    no_values(name, n, option_name, &values)?;
                    true
                }
                "HOTP_COUNTER" => {
                    return Err(at(
                        name,
                        n,
                        "this is a counter-based (HOTP) file: HOTP is not supported, only \
                         time-based codes (TOTP); set the user up again with \
                         google-authenticator -t, or enroll with mb-2fa-enable",
                    ));
                }
                "DISALLOW_REUSE" => {
                    if let Some(step) = numbers()?.into_iter().max() {
                        let step = i64::try_from(step)
                            .map_err(|_| at(name, n, "a used step is out of range"))?;
                        floor = Some(Floor { step, line: n });
                    }
                    true
                }
                "RATE_LIMIT" => {
                    let v = numbers()?;
                    if v.len() < 2 || v[0] == 0 || v[1] == 0 {
                        return Err(at(
                            name,
                            n,
                            "RATE_LIMIT needs a count and a number of seconds (both above 0)",
                        ));
                    }
                    notes.push(format!(
                        "RATE_LIMIT {} {} not kept: the lockout applies (5 failures)",
                        v[0], v[1]
                    ));
                    true
                }
                "WINDOW_SIZE" => {
                    let v = numbers()?;
                    if v.len() != 1 || !WINDOW_SIZES.contains(&v[0]) {
                        return Err(at(name, n, "WINDOW_SIZE needs one number from 1 to 21"));
                    }
                    notes.push(format!(
                        "WINDOW_SIZE {} not kept: the window is ±1 step around the learned drift",
                        v[0]
                    ));
                    true
                }
                "STEP_SIZE" => {
                    let v = numbers()?;
                    let size = match v.as_slice() {
                        [s] => u32::try_from(*s).ok().filter(|s| STEP_SIZES.contains(s)),
                        _ => None,
                    };
                    period = Some(size.ok_or_else(|| {
                        at(
                            name,
                            n,
                            "STEP_SIZE needs one number of seconds from 1 to 60",
                        )
                    })?);
                    true
                }
                "TIME_SKEW" | "RESETTING_TIME_SKEW" => {
                    // Signed numbers written by the module itself.
                    if values
                        .iter()
                        .any(|v| v.trim_start_matches(['-', '+']).parse::<u64>().is_err())
                    {
                        return Err(at(name, n, format!("{option_name} takes numbers only")));
                    }
                    notes.push(format!(
                        "{option_name} not kept: the clock drift is learned again"
                    ));
                    true
                }
                _ => false,
            };
            if !known {
                return Err(at(
                    name,
                    n,
                    "an unknown option line (known: TOTP_AUTH, DISALLOW_REUSE, RATE_LIMIT, \
                     WINDOW_SIZE, STEP_SIZE, TIME_SKEW, RESETTING_TIME_SKEW; HOTP_COUNTER is refused)",
                ));
            }
            if seen.contains(&option_name) {
                return Err(at(name, n, format!("{option_name} appears twice")));
            }
            seen.push(option_name);
            continue;
        }
        let Some(code) = BackupCode::scratch(line) else {
            return Err(at(
                name,
                n,
                format!(
                    "neither an option line (\" NAME ...) nor a scratch code ({SCRATCH_LEN} digits)"
                ),
            ));
        };
        if scratch.iter().any(|(_, c)| *c == code) {
            continue; // the same code twice is one code
        }
        if scratch.len() == backup_codes::COUNT {
            return Err(at(
                name,
                n,
                format!(
                    "more than {} scratch codes (google-authenticator writes at most 10)",
                    backup_codes::COUNT
                ),
            ));
        }
        scratch.push((n, code));
    }
    Ok(Entry {
        line: 1,
        email: email.clone(),
        secret,
        params: TotpParams {
            period: period.unwrap_or(30),
            ..TotpParams::default()
        },
        issuer: None,
        floor,
        scratch_codes: scratch,
        notes,
    })
}

fn no_values(name: &str, n: usize, option: &str, values: &[&str]) -> Result<()> {
    if values.is_empty() {
        Ok(())
    } else {
        Err(at(name, n, format!("{option} takes no values")))
    }
}

/// The values of an option line as numbers (google-authenticator writes
/// only unsigned decimal numbers).
fn numbers(name: &str, n: usize, option: &str, values: &[&str]) -> Result<Vec<u64>> {
    values
        .iter()
        .map(|v| {
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(at(
                    name,
                    n,
                    format!("{option} takes numbers only (a value is not a number)"),
                ));
            }
            v.parse::<u64>()
                .map_err(|_| at(name, n, format!("{option}: a value is out of range")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Email {
        Email::parse("alice@example.com").expect("email")
    }

    /// What `google-authenticator -t -d -f -r 3 -R 30 -w 3 -Q NONE -q -s F`
    /// wrote (version 1.09), with two used steps added.
    const REAL: &str = "LGR6H2MEWKTWUXUH5IITIMO4NI\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\
                        \" DISALLOW_REUSE 56731650 56731652 56731651\n\" TOTP_AUTH\n84308363\n\
                        22707427\n94931192\n57546282\n73588021\n";

    fn err(input: &str) -> String {
        let e = parse(input.as_bytes(), "F", &alice()).expect_err(input);
        assert_eq!(e.exit_code(), 2, "{}", e.message());
        assert!(
            e.message().ends_with("; nothing was imported"),
            "{}",
            e.message()
        );
        e.message().to_string()
    }

    #[test]
    fn a_real_file() {
        let e = parse(REAL.as_bytes(), "F", &alice()).expect("parses");
        assert_eq!(e.secret.as_bytes().len(), 16);
        assert_eq!(e.secret.to_base32().as_str(), "LGR6H2MEWKTWUXUH5IITIMO4NI");
        assert_eq!(e.params, TotpParams::default());
        assert_eq!(
            e.floor,
            Some(Floor {
                step: 56731652,
                line: 4
            })
        );
        let codes: Vec<&str> = e.scratch_codes.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(
            codes,
            ["84308363", "22707427", "94931192", "57546282", "73588021"]
        );
        assert_eq!(e.scratch_codes[0].0, 6);
        assert_eq!(e.notes.len(), 2);
    }

    #[test]
    fn step_size_is_the_period_and_reuse_without_steps_sets_no_floor() {
        let e = parse(
            b"JBSWY3DPEHPK3PXPJBSWY3DP\n\" STEP_SIZE 60\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n",
            "F",
            &alice(),
        )
        .expect("parses");
        assert_eq!(e.params.period, 60);
        assert_eq!(e.floor, None);
        assert!(e.scratch_codes.is_empty());
        // The secret alone is a file too; lower case is read as upper case.
        let e = parse(b"jbswy3dpehpk3pxpjbswy3dp", "F", &alice()).expect("parses");
        assert_eq!(e.params.period, 30);
    }

    #[test]
    fn bad_files_name_the_line() {
        assert!(err("").contains("F line 1: the file is empty"));
        assert!(err("\" TOTP_AUTH\n").contains("line 1 must be the secret"));
        assert!(err("JBSWY3DP1HPK3PXP\n").contains("line 1: the secret is not base32"));
        assert!(err("JBSWY3DPEHPK\n").contains("line 1: the secret is 7 bytes"));
        assert!(
            err("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 1\n")
                .contains("line 2: this is a counter-based (HOTP) file: HOTP is not supported")
        );
        assert!(
            err("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" FROBNICATE 1\n")
                .contains("line 3: an unknown option line")
        );
        assert!(
            err("JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 12 x3\n")
                .contains("line 2: DISALLOW_REUSE takes numbers only")
        );
        assert!(err("JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE -5\n").contains("line 2:"));
        assert!(err("JBSWY3DPEHPK3PXP\n\" STEP_SIZE 0\n").contains("line 2: STEP_SIZE needs"));
        assert!(err("JBSWY3DPEHPK3PXP\n\" STEP_SIZE 30 30\n").contains("line 2: STEP_SIZE needs"));
        assert!(err("JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE 99\n").contains("line 2: WINDOW_SIZE"));
        assert!(err("JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3\n").contains("line 2: RATE_LIMIT"));
        assert!(
            err("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" TOTP_AUTH\n")
                .contains("line 3: TOTP_AUTH appears twice")
        );
        assert!(
            err("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH yes\n")
                .contains("line 2: TOTP_AUTH takes no values")
        );
        assert!(err("JBSWY3DPEHPK3PXP\n1234567\n").contains("line 2: neither an option line"));
        assert!(err("JBSWY3DPEHPK3PXP\n123456789\n").contains("line 2: neither"));
        assert!(err("JBSWY3DPEHPK3PXP\n\"TOTP_AUTH\n").contains("line 2: neither"));
        assert!(
            err("JBSWY3DPEHPK3PXP\n12345678\x1b]0;x\x07\n")
                .contains("line 2: a control character (U+001B)")
        );
        let eleven: String = (10_000_000..10_000_011).map(|c| format!("{c}\n")).collect();
        assert!(
            err(&format!("JBSWY3DPEHPK3PXP\n{eleven}"))
                .contains("line 12: more than 10 scratch codes")
        );
    }

    #[test]
    fn messages_never_hold_the_secret_or_a_code() {
        for input in [
            "JBSWY3DPEHPK3PX!\n",
            "JBSWY3DPEHPK3PXP\n8430836\n",
            "JBSWY3DPEHPK3PXP\n\" STEP_SIZE JBSWY3DP\n",
        ] {
            let m = err(input);
            assert!(!m.contains("JBSWY3DP"), "{m}");
            assert!(!m.contains("8430836"), "{m}");
        }
    }
}
