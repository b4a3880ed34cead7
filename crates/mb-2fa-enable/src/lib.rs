//! `mb-2fa-enable`: enroll an account. Prints the QR code, the secret for
//! manual entry, the otpauth URI and 10 backup codes, all shown this once.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use mb2fa_core::account::{self, Ctx, Enrollment};
use mb2fa_core::cli::{self, Globals, Report};
use mb2fa_core::clock::SystemClock;
use mb2fa_core::qr::{Matrix, Render, Style};
use mb2fa_core::{Error, Result, uri};

pub fn command() -> Command {
    cli::command(
        "mb-2fa-enable",
        "Enroll an account in TOTP two-factor authentication: new secret, QR code, backup codes",
    )
    .long_about(
        "Enroll an account in TOTP two-factor authentication.\n\n\
         Prints a QR code to scan with Google Authenticator, Authy, Microsoft Authenticator or \
         1Password, the secret for manual entry, and 10 single-use backup codes. Nothing is shown \
         again. The enrollment stays pending until the first code is verified with mb-2fa-verify.",
    )
    .arg(cli::email_arg())
    .arg(cli::key_file_arg())
    .arg(
        Arg::new("issuer")
            .long("issuer")
            .value_name("NAME")
            .help(format!(
                "Name shown in the authenticator app [default: the policy's issuer, else {}]",
                uri::DEFAULT_ISSUER
            )),
    )
    .arg(
        Arg::new("force")
            .long("force")
            .action(ArgAction::SetTrue)
            .help(
                "Replace an active enrollment (the old phone setup and backup codes stop working)",
            ),
    )
    .arg(
        Arg::new("qr")
            .long("qr")
            .value_name("STYLE")
            .value_parser(["auto", "unicode", "ascii", "none"])
            .default_value("auto")
            .help("QR code as Unicode half blocks, ASCII, or not at all; auto picks by locale"),
    )
    .arg(
        Arg::new("qr-invert")
            .long("qr-invert")
            .action(ArgAction::SetTrue)
            .help("Swap dark and light (for dark terminal themes when colours are off)"),
    )
    .arg(
        Arg::new("qr-file")
            .long("qr-file")
            .value_name("FILE.svg")
            .value_parser(value_parser!(PathBuf))
            .help("Also write the QR code to a new SVG file (mode 0600: it holds the secret)"),
    )
    .after_help(
        "Examples:\n  sudo mb-2fa-enable --email alice@example.com\n  \
         mb-2fa-enable --db ./2fa.db --email alice@example.com --qr ascii\n  \
         mb-2fa-enable --email alice@example.com --json --qr none   # for scripts",
    )
}

/// Run the tool on `args` (program name first) and return its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    cli::run(command(), args, execute)
}

fn execute(m: &ArgMatches, g: &Globals) -> Result<Report> {
    let email = cli::email(m)?;
    let explicit_issuer = m
        .get_one::<String>("issuer")
        .map(|i| uri::parse_issuer(i))
        .transpose()?;
    let force = m.get_flag("force");
    let qr_file = m.get_one::<PathBuf>("qr-file");
    if let Some(path) = qr_file {
        check_qr_file(path)?;
    }
    // Every output exists before the enrollment does: a QR file that cannot
    // be made stops the run with nothing enrolled.
    let mut qr_out = qr_file.map(|p| create_qr_file(p)).transpose()?;
    let enrolled = enroll(m, g, &email, explicit_issuer, force);
    let (e, matrix) = match enrolled {
        Ok(v) => v,
        Err(err) => {
            if let Some(path) = qr_file {
                drop(qr_out.take());
                let _ = std::fs::remove_file(path);
            }
            return Err(err);
        }
    };
    let email_s = e.email.as_str().to_string();
    let start_over = format!(
        "the enrollment of {email_s} was made (pending: it has no effect until a first code is verified), but its secret and backup codes were not delivered; start over with: mb-2fa-enable --email {email_s} --force"
    );
    if let (Some(path), Some(f)) = (qr_file, qr_out.as_mut()) {
        f.write_all(matrix.svg().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|err| {
                Error::storage(format!(
                    "cannot write {}: {err}; {start_over}",
                    path.display()
                ))
            })?;
    }
    let codes: Vec<String> = e
        .backup_codes
        .iter()
        .map(|c| c.formatted().to_string())
        .collect();
    let replaced = e.replaced.map(|s| s.as_str());
    let mut report = Report::new()
        .if_undelivered(start_over)
        .field("email", e.email.as_str())
        .field("state", "pending")
        .field("secret", e.secret.to_base32().as_str())
        .field("otpauth_uri", e.otpauth_uri.as_str())
        .field("backup_codes", codes.clone())
        .field("issuer", e.issuer.as_str())
        .field("algorithm", e.params.algorithm.as_str())
        .field("digits", e.params.digits)
        .field("period", e.params.period)
        .field("replaced", replaced);
    if let Some(path) = qr_file {
        report = report.field("qr_file", path.display().to_string());
    }
    if g.quiet {
        report = report.line(e.otpauth_uri.as_str());
        for c in &codes {
            report = report.line(c);
        }
        return Ok(report);
    }
    report.human = human(m, &e, &matrix, &codes, qr_file.map(PathBuf::as_path));
    Ok(report)
}

/// Open the store, apply the policy's issuer and enroll: the commit.
fn enroll(
    m: &ArgMatches,
    g: &Globals,
    email: &mb2fa_core::email::Email,
    explicit_issuer: Option<String>,
    force: bool,
) -> Result<(Enrollment, Matrix)> {
    let mut store = cli::open_for_enrollment(m, g)?;
    let issuer = account::issuer_for_enrollment(&mut store, explicit_issuer)?;
    let ctx = Ctx::new(&SystemClock, "mb-2fa-enable");
    let e = account::enable(&mut store, &ctx, email, &issuer, force)?;
    let matrix = Matrix::encode(&e.otpauth_uri)?;
    Ok((e, matrix))
}

fn human(
    m: &ArgMatches,
    e: &Enrollment,
    matrix: &Matrix,
    codes: &[String],
    qr_file: Option<&Path>,
) -> String {
    let mut out = String::new();
    let email = e.email.as_str();
    match e.replaced {
        Some(s) => out.push_str(&format!(
            "Enrolled {email} (replacing its {} enrollment). 2FA is pending until the first code is verified.\n",
            s.as_str()
        )),
        None => out.push_str(&format!(
            "Enrolled {email}. 2FA is pending until the first code is verified.\n"
        )),
    }
    if let Some(style) = qr_style(m) {
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let render = Render {
            style,
            color: stdout_tty && !no_color,
            invert: m.get_flag("qr-invert"),
        };
        out.push('\n');
        out.push_str(&matrix.render(render));
        out.push_str("\nScan it with Google Authenticator, Authy, Microsoft Authenticator or 1Password,\nor type the secret by hand.\n");
    }
    if let Some(path) = qr_file {
        out.push_str(&format!(
            "QR code written to {} (it holds the secret: delete it once delivered).\n",
            path.display()
        ));
    }
    out.push_str(&format!(
        "\nSecret (time-based, {}, {} digits, {} s):\n  {}\n",
        e.params.algorithm.as_str(),
        e.params.digits,
        e.params.period,
        e.secret.to_grouped_base32().as_str()
    ));
    out.push_str(&format!("\notpauth URI:\n  {}\n", e.otpauth_uri.as_str()));
    out.push_str(
        "\nBackup codes (each works once; store them offline; they are not shown again):\n",
    );
    for pair in codes.chunks(2) {
        out.push_str(&format!("  {}\n", pair.join("    ")));
    }
    out.push_str(&format!(
        "\nNext: mb-2fa-verify --email {email} --code <6-digit code from the app>\n"
    ));
    out
}

/// `auto` is Unicode half blocks unless the locale names another charset.
fn qr_style(m: &ArgMatches) -> Option<Style> {
    match m.get_one::<String>("qr").map_or("auto", String::as_str) {
        "none" => None,
        "ascii" => Some(Style::Ascii),
        "unicode" => Some(Style::Unicode),
        _ => {
            let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
            match locale {
                Some(l) if !l.to_ascii_lowercase().replace('-', "").contains("utf8") => {
                    Some(Style::Ascii)
                }
                _ => Some(Style::Unicode),
            }
        }
    }
}

fn check_qr_file(path: &Path) -> Result<()> {
    let is_svg = path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("svg"));
    if !is_svg {
        return Err(Error::usage(format!(
            "--qr-file {}: only SVG is supported; name the file *.svg",
            path.display()
        )));
    }
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::usage(format!(
            "--qr-file {}: the file exists; choose a new name (it will hold a secret)",
            path.display()
        )));
    }
    Ok(())
}

/// Create the QR file before anything is enrolled: a new file (never an
/// existing one, never through a symlink), mode 0600 (it will hold the
/// secret).
fn create_qr_file(path: &Path) -> Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            Error::storage(format!(
                "--qr-file {}: cannot create it: {e}; nothing was enrolled",
                path.display()
            ))
        })
}
