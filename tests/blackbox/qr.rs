//! The QR code: the terminal art of `mb-2fa-enable` must decode, with an
//! independent decoder (rqrr), to exactly the otpauth URI printed with it.

use std::fs;

use mb2fa_testkit::{
    ENABLE, Env, OtpauthUri, QrStyle, art_lines, art_to_modules, backup_codes_in, decode_art,
    decode_one, invert, mode, quiet_zone, run_all, svg_to_modules, totp_now, uri_in,
};

const ALICE: &str = "alice@example.com";

/// Human output of enable, checked for the parts every mode prints: the URI,
/// the secret in groups of 4 and 10 backup codes. Returns (stdout, URI).
fn enable_human(env: &Env, email: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--email", email];
    args.extend_from_slice(extra);
    let run = env.run(ENABLE, &args);
    run.expect_code(0);
    let out = run.stdout.clone();
    assert!(
        !out.contains('\u{1b}'),
        "colours although stdout is not a terminal\n{run}"
    );
    let uri = uri_in(&out);
    let secret = OtpauthUri::parse(&uri)
        .param("secret")
        .expect("secret in the URI")
        .to_string();
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(
        out.contains(&grouped.join(" ")),
        "the secret in groups of 4 ({}) is missing\n{run}",
        grouped.join(" ")
    );
    let codes = backup_codes_in(&out);
    assert_eq!(codes.len(), 10, "10 backup codes expected\n{run}");
    (out, uri)
}

#[test]
fn unicode_art_decodes_to_the_uri() {
    let env = Env::new();
    let (out, uri) = enable_human(&env, ALICE, &["--qr", "unicode"]);
    assert_eq!(decode_art(&out, QrStyle::Unicode), uri);
    let art = art_lines(&out, QrStyle::Unicode, 1);
    // A quiet zone of at least 2 modules above, left and below.
    let (top, left, bottom) = quiet_zone(&art_to_modules(&art, QrStyle::Unicode));
    assert!(
        top >= 2 && left >= 2 && bottom >= 2,
        "quiet zone {top}/{left}/{bottom}:\n{out}"
    );
}

#[test]
fn unicode_art_fits_an_80x24_terminal() {
    // The spec: for a typical email the symbol (version 6 at level L, 41
    // modules, 2-module quiet zone) is 45x23 character cells. The secret is
    // random and changes how the encoder segments the URI, so try several.
    let env = Env::new();
    let emails: Vec<String> = ('a'..='x')
        .map(|c| format!("alic{c}@example.com"))
        .collect();
    let cmds = emails
        .iter()
        .map(|m| env.command(ENABLE, ["--qr", "unicode", "--email", m.as_str()]))
        .collect();
    let mut oversized = Vec::new();
    for run in run_all(cmds, None) {
        run.expect_code(0);
        let uri = uri_in(&run.stdout);
        assert_eq!(decode_art(&run.stdout, QrStyle::Unicode), uri);
        let art = art_lines(&run.stdout, QrStyle::Unicode, 1);
        let width = art.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        if art.len() > 23 || width > 80 {
            oversized.push(format!("{} rows x {width} columns for {uri}", art.len()));
        }
    }
    assert!(
        oversized.is_empty(),
        "QR art larger than 45x23 cells:\n{}",
        oversized.join("\n")
    );
}

#[test]
fn ascii_art_decodes_to_the_uri() {
    let env = Env::new();
    let (out, uri) = enable_human(&env, ALICE, &["--qr", "ascii"]);
    let art = art_lines(&out, QrStyle::Ascii, 2);
    assert!(art.iter().all(|l| l.is_ascii()), "non-ASCII in ASCII art");
    assert!(
        !out.contains(['█', '▀', '▄']),
        "half blocks in ASCII mode:\n{out}"
    );
    assert_eq!(decode_art(&out, QrStyle::Ascii), uri);
    let (top, left, bottom) = quiet_zone(&art_to_modules(&art, QrStyle::Ascii));
    assert!(
        top >= 2 && left >= 2 && bottom >= 2,
        "quiet zone {top}/{left}/{bottom}:\n{out}"
    );
}

#[test]
fn a_long_email_and_issuer_still_decode() {
    let env = Env::new();
    let email = "firstname.lastname+2fa@subdomain.mail.example.com";
    let (out, uri) = enable_human(
        &env,
        email,
        &[
            "--qr",
            "unicode",
            "--issuer",
            "Mailborder - mail.example.com",
        ],
    );
    assert_eq!(decode_art(&out, QrStyle::Unicode), uri);
    assert_eq!(
        OtpauthUri::parse(&uri).label,
        format!("Mailborder - mail.example.com:{email}")
    );
}

#[test]
fn inverted_art_is_the_negative() {
    let env = Env::new();
    for (style, name) in [(QrStyle::Ascii, "ascii"), (QrStyle::Unicode, "unicode")] {
        let email = format!("{name}@example.com");
        let (out, uri) = enable_human(&env, &email, &["--qr", name, "--qr-invert"]);
        let grid = art_to_modules(&art_lines(&out, style, 0), style);
        assert_eq!(decode_one(&invert(&grid)), uri, "{name}");
    }
}

#[test]
fn qr_none_prints_no_art_but_everything_else() {
    let env = Env::new();
    let (out, uri) = enable_human(&env, ALICE, &["--qr", "none"]);
    assert!(
        !out.contains(['█', '▀', '▄']) && !out.contains("##"),
        "art printed with --qr none:\n{out}"
    );
    // What was printed is what was stored: the secret activates, and a
    // printed backup code then works.
    let secret = OtpauthUri::parse(&uri)
        .param("secret")
        .expect("secret")
        .to_string();
    let v = env.verify_json(ALICE, &totp_now(&secret, 0)).ok_json();
    assert_eq!(v["activated"], true);
    let codes = backup_codes_in(&out);
    let v = env.verify_json(ALICE, &codes[9]).ok_json();
    assert_eq!(v["backup_codes_left"], 9);
}

#[test]
fn qr_file_writes_an_svg_that_decodes_to_the_uri() {
    let env = Env::new();
    let svg_path = env.path("alice.svg");
    let path = svg_path.to_str().expect("utf-8 path");
    let (out, uri) = enable_human(&env, ALICE, &["--qr", "none", "--qr-file", path]);
    let svg = fs::read_to_string(&svg_path).expect("the SVG file");
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert_eq!(decode_one(&svg_to_modules(&svg)), uri);
    // It holds the secret: not readable by group or others.
    assert_eq!(mode(&svg_path) & 0o077, 0, "mode {:o}", mode(&svg_path));
    assert!(
        out.contains(path),
        "the output should say where the file is:\n{out}"
    );
}

#[test]
fn qr_file_never_overwrites() {
    let env = Env::new();
    let svg_path = env.path("taken.svg");
    fs::write(&svg_path, "precious").expect("write");
    let path = svg_path.to_str().expect("utf-8 path");
    let run = env.run(
        ENABLE,
        ["--qr", "none", "--email", ALICE, "--qr-file", path],
    );
    assert_ne!(run.code, 0, "{run}");
    assert_eq!(fs::read_to_string(&svg_path).expect("read"), "precious");
}

#[test]
fn auto_style_follows_the_locale() {
    let env = Env::new();
    for (locale, style) in [("C.UTF-8", QrStyle::Unicode), ("C", QrStyle::Ascii)] {
        let email = format!(
            "auto-{}@example.com",
            locale.to_lowercase().replace('.', "-")
        );
        let mut cmd = env.command(ENABLE, ["--email", email.as_str()]);
        cmd.env("LC_ALL", locale)
            .env("LC_CTYPE", locale)
            .env("LANG", locale);
        let run = mb2fa_testkit::run_command(cmd, None);
        run.expect_code(0);
        assert_eq!(
            decode_art(&run.stdout, style),
            uri_in(&run.stdout),
            "LC_ALL={locale}\n{run}"
        );
        if style == QrStyle::Ascii {
            assert!(
                run.stdout.is_ascii(),
                "non-ASCII output in the C locale\n{run}"
            );
        }
    }
}
