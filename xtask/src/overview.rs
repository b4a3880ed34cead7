//! `mb-2fa(8)`: the tool set, the enrollment lifecycle, enforcement and the
//! recovery procedure (summarised from the README's "Break-glass and recovery
//! procedure"). The list of tools and their synopses come from their
//! `command()`s.

use std::path::PathBuf;

use anyhow::Result;
use clap::Command;
use clap_mangen::roff::{Roff, roman};

use crate::Output;
use crate::man::{MANUAL, SECTION, layout, source, synopsis_line};
use crate::markup::{inlines, item, para, reference, references, section};
use crate::tools::{TOOLS, Tool};

fn built(tool: &Tool) -> Command {
    let mut cmd = (tool.command)().disable_help_subcommand(true);
    cmd.build();
    cmd
}

pub fn page(date: &str) -> Result<Output> {
    let mut r = Roff::new();
    r.control("TH", ["MB-2FA", SECTION, date, &source(), MANUAL]);
    r.extend([layout()]);

    section(&mut r, "NAME");
    r.text([roman(
        "mb-2fa - TOTP two-factor authentication tools for the Mailborder appliance",
    )]);

    section(&mut r, "SYNOPSIS");
    for (i, tool) in TOOLS.iter().enumerate() {
        let cmd = built(tool);
        let subs: Vec<&Command> = cmd.get_subcommands().collect();
        let lines = if subs.is_empty() { vec![&cmd] } else { subs };
        for (j, c) in lines.into_iter().enumerate() {
            if i + j > 0 {
                r.control("br", []);
            }
            r.text(synopsis_line(c, true));
        }
    }

    section(&mut r, "DESCRIPTION");
    r.text(inlines(
        "The mb-2fa tools add two-factor authentication with time-based one-time passwords \
         (TOTP, RFC 6238: HMAC-SHA1, 6 digits, 30 seconds) to the admin accounts of a \
         Mailborder email-security appliance. Codes come from Google Authenticator, Authy, \
         Microsoft Authenticator, 1Password or any other RFC 6238 app.",
    ));
    para(
        &mut r,
        "Each tool is its own command with its own manual page. All of them share one SQLite \
         database, */var/lib/mailborder/2fa.db*, in which the TOTP secrets are sealed with a \
         key file, */etc/mailborder/2fa.key*. They are run by administrators with `sudo`, by \
         provisioning scripts, and by the appliance's login front end.",
    );
    para(
        &mut r,
        "Every tool takes `--db` *PATH* (or `MB2FA_DB`), `--json` (exactly one JSON document \
         on standard output, on success and on failure alike), `-q`, `--quiet`, `-h`, `--help` \
         and `-V`, `--version`. A code can be given as `-` to read it from standard input, so \
         that it never shows in `ps`(1). The tools that read or write a TOTP secret also take \
         `--key-file` *PATH* (or `MB2FA_KEY_FILE`).",
    );

    section(&mut r, "TOOLS");
    for tool in TOOLS {
        let cmd = (tool.command)();
        r.control("TP", []);
        r.text(reference(tool.name));
        r.text([roman(
            cmd.get_about().map(|a| a.to_string()).unwrap_or_default(),
        )]);
    }

    section(&mut r, "ENROLLMENT LIFECYCLE");
    r.text(inlines(
        "An account, named by its email address, is in one of these states:",
    ));
    item(
        &mut r,
        "*none*",
        "No enrollment. `mb-2fa-enable` makes one: a new 160-bit secret, shown once as a QR \
         code, as base32 text and as an otpauth URI, and 10 single-use backup codes.",
    );
    item(
        &mut r,
        "*pending*",
        "Enrolled, but no code verified yet: the user may not have scanned the QR code. \
         Backup codes are refused. Running `mb-2fa-enable` again replaces a pending enrollment.",
    );
    item(
        &mut r,
        "*active*",
        "The first good TOTP code given to `mb-2fa-verify` activates the enrollment. From then \
         on a code is accepted in the current 30-second step or one step either side (centred \
         on the phone's learned clock drift), and a step accepted once is never accepted again. \
         Each backup code works once; `mb-2fa-backup-codes` replaces them all. `mb-2fa-enable` \
         replaces an active enrollment only with `--force` (a new phone).",
    );
    item(
        &mut r,
        "*locked*",
        "After 5 wrong codes in a row the account is locked for 30 seconds, doubling with each \
         further wrong code up to 1 hour; a good code resets the count. `mb-2fa-unlock` clears \
         a lock.",
    );
    item(
        &mut r,
        "*removed*",
        "`mb-2fa-disable` deletes the secret and the backup codes, and the account is back to \
         *none*. It needs no key, so it works even when the key is lost.",
    );
    para(
        &mut r,
        "Every change and every verification outcome is recorded in the audit trail, with the \
         admin who ran it (`SUDO_USER`), and sent to syslog: see `mb-2fa-audit`(8). \
         `mb-2fa-list`(8) shows the state of each account.",
    );

    section(&mut r, "ENFORCEMENT");
    r.text(inlines(
        "`mb-2fa-policy`(8) keeps the policy in the database: whether 2FA is required of every \
         account, the grace period to enroll, the roles that get no grace, the issuer shown in \
         authenticator apps, and exemptions (service accounts, and the break-glass account). \
         At each login the front end (the web UI, or a script run by `pam_exec`(8)) runs \
         `mb-2fa-policy check --email` *EMAIL* and branches on its exit status (for SSH, \
         sudo and console logins, `pam_mb2fa`(8) makes the same decision through \
         `mb-2fa-verify --login`):",
    ));
    item(
        &mut r,
        "`0`",
        "*code*: ask for a code, then run `mb-2fa-verify`.",
    );
    item(
        &mut r,
        "`6`",
        "*allow* (not required, or exempt) or *setup* (not enrolled, within the grace period): \
         let in without a code.",
    );
    item(&mut r, "`7`", "*deny*: keep out.");
    item(
        &mut r,
        "`10`",
        "the database could not be read: keep out (fail closed).",
    );

    section(&mut r, "RECOVERY");
    r.text(inlines(
        "Keep one *break-glass* account, exempt from 2FA, whose password is kept offline (a \
         sealed envelope in a safe). Every login check of it is allowed, alerted (syslog auth \
         facility at priority alert, and an audit record with outcome break_glass) and marks it \
         used. After an emergency, rotate its password, put the new one in a new sealed \
         envelope, and re-arm the account with `mb-2fa-policy seal --email` *EMAIL*.",
    ));
    para(
        &mut r,
        "Case by case; every command is run by an admin with `sudo` and recorded in the audit \
         trail under the admin's name:",
    );
    item(
        &mut r,
        "Lost phone, backup codes at hand",
        "The user logs in with a backup code; then an admin enrolls the new phone: \
         `mb-2fa-enable --email` *EMAIL* `--force`.",
    );
    item(
        &mut r,
        "Lost phone, no backup codes",
        "After checking the user's identity: `mb-2fa-disable --email` *EMAIL*, then \
         `mb-2fa-enable --email` *EMAIL*. Meanwhile the grace period applies, or the user gets \
         *setup*.",
    );
    item(
        &mut r,
        "Backup codes used up or leaked",
        "`mb-2fa-backup-codes --email` *EMAIL*: the old codes stop working at once.",
    );
    item(
        &mut r,
        "Locked out after wrong codes",
        "Wait (30 seconds, doubling up to 1 hour), or `mb-2fa-unlock --email` *EMAIL*.",
    );
    item(
        &mut r,
        "The phone's clock is off",
        "`mb-2fa-verify --email` *EMAIL* `--code` *CODE* `--diagnose` says where the code \
         matches and changes nothing; then `mb-2fa-verify --email` *EMAIL* `--resync` *CODE1 \
         CODE2* with two consecutive codes from the phone. Better: turn on automatic date and \
         time on the phone.",
    );
    item(
        &mut r,
        "Key file lost",
        "Restore */etc/mailborder/2fa.key* from its backup. Without it no code can be verified \
         (exit status 10, fail closed). `mb-2fa-disable` works without the key, so every \
         account can be removed and enrolled again; a new key is made once the database holds \
         no sealed secret.",
    );
    item(
        &mut r,
        "2FA itself broken (database lost, a bug)",
        "Log in with the break-glass account, fix the problem, then seal the account again.",
    );

    section(&mut r, "EXIT STATUS");
    r.text(inlines("The same for every tool:"));
    for (code, text) in [
        ("0", "Success (`mb-2fa-verify`: the code was accepted)."),
        (
            "1",
            "Rejected: wrong code, replayed code, already-used or unknown backup code.",
        ),
        (
            "2",
            "Usage error or invalid input (bad email, malformed code, unknown option).",
        ),
        (
            "3",
            "No 2FA enrollment for that email; only said after the database was read \
             successfully.",
        ),
        ("4", "The account is locked out after repeated wrong codes."),
        (
            "5",
            "Conflict, e.g. 2FA already active and `--force` not given.",
        ),
        (
            "6",
            "`mb-2fa-policy check`: let in without a code (*allow* or *setup*).",
        ),
        ("7", "`mb-2fa-policy check`: keep out (*deny*)."),
        (
            "10",
            "Storage or key error: the database or key file is missing, unreadable, corrupt, \
             busy for too long, has the wrong permissions, or is the wrong key.",
        ),
    ] {
        item(&mut r, &format!("`{code}`"), text);
    }

    section(&mut r, "ENVIRONMENT");
    item(
        &mut r,
        "`MB2FA_DB`",
        "The database, when `--db` is not given. `sudo`(8) usually resets the environment, so \
         under sudo give `--db`.",
    );
    item(
        &mut r,
        "`MB2FA_KEY_FILE`",
        "The key file, when `--key-file` is not given.",
    );
    item(
        &mut r,
        "`MB2FA_SYSLOG_SOCKET`",
        "Send audit records to this datagram socket instead of */dev/log*; when set but empty, \
         send none to syslog.",
    );
    item(
        &mut r,
        "`SUDO_USER`",
        "Recorded as the actor of audit records; when unset, the invoking user.",
    );
    item(
        &mut r,
        "`NO_COLOR`",
        "`mb-2fa-enable` draws the QR code without colours.",
    );

    section(&mut r, "FILES");
    item(
        &mut r,
        "*/var/lib/mailborder/*",
        "State directory, mode 0700, created by the package or on first enrollment.",
    );
    item(
        &mut r,
        "*/var/lib/mailborder/2fa.db*",
        "The SQLite database, mode 0600 (WAL mode: *2fa.db-wal* and *2fa.db-shm* beside it \
         while in use): accounts, sealed secrets, backup-code hashes, policy, audit trail.",
    );
    item(
        &mut r,
        "*/etc/mailborder/2fa.toml*",
        "Optional configuration, owned by root and not writable by others: `[store] url` (a \
         MariaDB store shared by the nodes of a cluster) or `path`, `password_file`, `tls_ca`, \
         and `[key] file`. `--config` names another; `--db`, `MB2FA_DB`, `--key-file` and \
         `MB2FA_KEY_FILE` override it.",
    );
    item(
        &mut r,
        "*/etc/mailborder/*",
        "Key directory, mode 0700, created by the package or with the key.",
    );
    item(
        &mut r,
        "*/etc/mailborder/2fa.key*",
        "32 random bytes that seal the TOTP secrets, mode 0400, created atomically with the \
         first enrollment.",
    );
    para(
        &mut r,
        "Back up the database and the key separately (different media, or at least different \
         archives with different access): together they hold every user's second factor. \
         Removing the package keeps both; only purging it deletes them.",
    );

    section(&mut r, "SEE ALSO");
    let mut pages: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
    pages.extend(["pam_mb2fa(8)", "oathtool(1)", "sudo(8)", "pam_exec(8)"]);
    r.text(references(pages));

    Ok(Output {
        path: PathBuf::from(format!("man/mb-2fa.{SECTION}")),
        bytes: r.render().into_bytes(),
    })
}
