//! On a terminal (a pseudo-terminal from script(1)): the QR art is drawn
//! black on white with explicit colours unless NO_COLOR is set, and still
//! decodes; `mb-2fa-disable` asks before deleting.

use std::ffi::OsStr;

use mb2fa_testkit::{
    DISABLE, ENABLE, Env, QrStyle, art_lines, art_to_modules, decode_art, decode_one, invert,
    run_in_terminal, uri_in,
};

const ALICE: &str = "alice@example.com";

#[test]
fn colours_on_a_terminal_and_the_art_still_decodes() {
    let env = Env::new();
    for (style, name) in [(QrStyle::Unicode, "unicode"), (QrStyle::Ascii, "ascii")] {
        let email = format!("{name}@example.com");
        let cmd = env.command(ENABLE, ["--qr", name, "--email", email.as_str()]);
        let Some(run) = run_in_terminal(&cmd, b"") else {
            return;
        };
        run.expect_code(0);
        assert!(
            run.stdout.contains("\u{1b}["),
            "no colours on a terminal\n{run}"
        );
        // Colours make ink dark whatever the theme: --qr-invert must not
        // produce a negative then, and the art decodes as is.
        assert_eq!(
            decode_art(&run.stdout, style),
            uri_in(&run.stdout),
            "{name}\n{run}"
        );
    }
    let cmd = env.command(
        ENABLE,
        [
            "--force",
            "--qr",
            "unicode",
            "--qr-invert",
            "--email",
            ALICE,
        ],
    );
    let Some(run) = run_in_terminal(&cmd, b"") else {
        return;
    };
    run.expect_code(0);
    assert_eq!(
        decode_art(&run.stdout, QrStyle::Unicode),
        uri_in(&run.stdout),
        "{run}"
    );
}

#[test]
fn no_color_turns_colours_off_on_a_terminal() {
    let env = Env::new();
    let mut cmd = env.command(ENABLE, ["--qr", "ascii", "--email", ALICE]);
    cmd.env("NO_COLOR", "1");
    let Some(run) = run_in_terminal(&cmd, b"") else {
        return;
    };
    run.expect_code(0);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "colours despite NO_COLOR\n{run}"
    );
    assert_eq!(decode_art(&run.stdout, QrStyle::Ascii), uri_in(&run.stdout));

    // Without colours --qr-invert draws the negative (for dark themes).
    let mut cmd = env.command(
        ENABLE,
        ["--force", "--qr", "ascii", "--qr-invert", "--email", ALICE],
    );
    cmd.env("NO_COLOR", OsStr::new("1"));
    let Some(run) = run_in_terminal(&cmd, b"") else {
        return;
    };
    run.expect_code(0);
    let grid = art_to_modules(&art_lines(&run.stdout, QrStyle::Ascii, 0), QrStyle::Ascii);
    assert_eq!(decode_one(&invert(&grid)), uri_in(&run.stdout));
}

#[test]
fn disable_asks_on_a_terminal() {
    let env = Env::new();
    env.enroll(ALICE);
    let cmd = env.command(DISABLE, ["--email", ALICE]);
    let before = env.snapshot();
    let Some(run) = run_in_terminal(&cmd, b"n\n") else {
        return;
    };
    assert_eq!(run.code, 2, "answering no must refuse\n{run}");
    assert!(run.stdout.contains("[y/N]"), "no question asked\n{run}");
    assert_eq!(env.snapshot(), before, "answering no changed the database");
    assert_eq!(env.accounts().len(), 1);

    let Some(run) = run_in_terminal(&cmd, b"y\n") else {
        return;
    };
    run.expect_code(0);
    assert!(
        env.accounts().is_empty(),
        "answering yes did not disable\n{run}"
    );
}
