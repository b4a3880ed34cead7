//! The independent RFC 6238 reference (and oathtool) against the RFC's own
//! test vectors, so the other tests can trust the codes they compute.

use mb2fa_testkit::{decode_secret, hotp, is_secret, oathtool_at, totp_at, totp_now};

/// RFC 6238 Appendix B, SHA1: the ASCII secret "12345678901234567890".
const RFC_SECRET: &[u8] = b"12345678901234567890";
const RFC_SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RFC_SHA1_VECTORS: [(u64, &str); 6] = [
    (59, "94287082"),
    (1_111_111_109, "07081804"),
    (1_111_111_111, "14050471"),
    (1_234_567_890, "89005924"),
    (2_000_000_000, "69279037"),
    (20_000_000_000, "65353130"),
];

#[test]
fn reference_matches_rfc6238_appendix_b_sha1_vectors() {
    for (t, want) in RFC_SHA1_VECTORS {
        assert_eq!(totp_at(RFC_SECRET, t, 8), want, "T = {t}");
        // 6 digits are the low 6 digits of the same truncated value.
        assert_eq!(totp_at(RFC_SECRET, t, 6), want[2..], "T = {t}, 6 digits");
    }
}

#[test]
fn reference_matches_rfc4226_appendix_d_hotp_vectors() {
    let want = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    for (counter, want) in want.iter().enumerate() {
        assert_eq!(
            hotp(RFC_SECRET, counter as u64, 6),
            *want,
            "counter {counter}"
        );
    }
}

#[test]
fn base32_helpers_read_the_rfc_secret() {
    assert_eq!(decode_secret(RFC_SECRET_B32), RFC_SECRET);
    assert_eq!(
        decode_secret("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"),
        RFC_SECRET
    );
    assert!(is_secret(RFC_SECRET_B32));
    assert!(!is_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1"));
    assert!(!is_secret("GEZDGNBVGY3TQOJQ"));
}

#[test]
fn oathtool_agrees_with_the_rfc_vectors() {
    for (t, want) in RFC_SHA1_VECTORS {
        assert_eq!(oathtool_at(RFC_SECRET_B32, t, 8), want, "T = {t}");
        assert_eq!(oathtool_at(RFC_SECRET_B32, t, 6), want[2..], "T = {t}");
    }
}

#[test]
fn totp_now_is_the_code_of_the_current_step() {
    // Retry once if a step boundary falls between the two computations.
    for _ in 0..2 {
        let before = mb2fa_testkit::now_unix();
        let code = totp_now(RFC_SECRET_B32, 0);
        let next = totp_now(RFC_SECRET_B32, 1);
        let after = mb2fa_testkit::now_unix();
        if before / 30 != after / 30 {
            continue;
        }
        assert_eq!(code, totp_at(RFC_SECRET, before, 6));
        assert_eq!(next, totp_at(RFC_SECRET, before + 30, 6));
        assert_eq!(code, oathtool_at(RFC_SECRET_B32, before, 6));
        return;
    }
    panic!("two step boundaries in a row: is the clock jumping?");
}
