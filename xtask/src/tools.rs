//! The tools and what their man pages say beyond their clap definitions: exit
//! status, JSON output, examples. Options, defaults, environment variables of
//! options and descriptions come from each tool's `command()` and are not
//! repeated here.
//!
//! Text uses a little markup (see `markup`): `` `bold` `` for what is typed
//! (commands, options, literal values) and `*italic*` for paths and
//! placeholders.

use clap::Command;

pub struct Tool {
    pub name: &'static str,
    pub command: fn() -> Command,
    /// Exit codes this tool can return, with what they mean for it, in
    /// order; consecutive entries of one code are one item of the page.
    pub exit: &'static [(u8, &'static str)],
    /// Writes audit records (so `SUDO_USER` and syslog matter).
    pub audited: bool,
    /// Environment variables read directly (not through an option).
    pub extra_env: &'static [(&'static str, &'static str)],
    /// The fields of its `--json` document on success.
    pub json: &'static [&'static str],
    pub examples: &'static [Example],
    pub see_also: &'static [&'static str],
}

/// A command line for the EXAMPLES section, and what it does. `run` is shell;
/// the tests parse every invocation of a tool in it with that tool's
/// `command()`, so an example cannot drift from the real options.
pub struct Example {
    pub what: &'static str,
    pub run: &'static str,
}

const fn ex(what: &'static str, run: &'static str) -> Example {
    Example { what, run }
}

pub const STORAGE_EXIT: (u8, &str) = (
    10,
    "Storage or key error: the database or the key file is missing, unreadable, corrupt, \
     has loose permissions, is busy for too long, or is not the key the database was \
     sealed with. Nothing was changed (fail closed).",
);
pub const USAGE_EXIT: (u8, &str) = (
    2,
    "Usage error or invalid input: unknown option, malformed email address or code. \
     The message names the problem.",
);

/// Every tool, in the order of the overview page.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "mb-2fa-enable",
        command: mb_2fa_enable::command,
        exit: &[
            (
                0,
                "The account is enrolled; its enrollment is pending until the first code is verified.",
            ),
            USAGE_EXIT,
            (
                5,
                "Conflict: the account's 2FA is already active and `--force` was not given.",
            ),
            STORAGE_EXIT,
        ],
        audited: true,
        extra_env: &[
            (
                "NO_COLOR",
                "When set and not empty, the QR code is drawn without colours. Otherwise, on a \
                 terminal, it is drawn black on white whatever the terminal's theme, so that a \
                 phone camera can read it.",
            ),
            (
                "LC_ALL, LC_CTYPE, LANG",
                "The first one set decides `--qr auto`: Unicode half blocks unless it names a \
                 character set other than UTF-8, then ASCII.",
            ),
        ],
        json: &[
            "`email`, `state` (`\"pending\"`), `secret` (base32, no padding), `otpauth_uri`, \
             `backup_codes` (an array of 10 strings), `issuer`, `algorithm`, `digits`, `period`, \
             `replaced` (the state of the enrollment it replaced, or null), and `qr_file` with \
             `--qr-file`.",
            "This output holds the secret and the backup codes: keep it out of logs.",
        ],
        examples: &[
            ex(
                "Enroll an account and show the QR code to scan, the secret and the backup codes:",
                "sudo mb-2fa-enable --email alice@example.com",
            ),
            ex(
                "Name the appliance in the authenticator app, and also write the QR code to a \
                 file to send to the user (delete it once delivered):",
                "sudo mb-2fa-enable --email alice@example.com \\\n    --issuer \"Mailborder - example.com\" --qr-file /root/alice.svg",
            ),
            ex(
                "Enroll the new phone of a user who lost the old one (the old secret and backup \
                 codes stop working):",
                "sudo mb-2fa-enable --email alice@example.com --force",
            ),
            ex(
                "In a provisioning script:",
                "secret=$(mb-2fa-enable --email alice@example.com --json --qr none \\\n    | jq -r .secret)",
            ),
        ],
        see_also: &["mb-2fa-verify", "mb-2fa-backup-codes", "mb-2fa-policy"],
    },
    Tool {
        name: "mb-2fa-verify",
        command: mb_2fa_verify::command,
        exit: &[
            (
                0,
                "The code was accepted (a backup code is now spent), the clock drift was \
                 re-synchronised, or the diagnosis ran (`--diagnose` exits 0 when it could read \
                 the account and it is not locked; a code it finds nowhere, or an unknown backup \
                 code, is counted as a wrong code; codes of the future beyond the window are \
                 never searched).",
            ),
            (
                1,
                "Rejected: wrong code, a code or an earlier one already used, an already-used or \
                 unknown backup code, or a backup code before the enrollment is active.",
            ),
            USAGE_EXIT,
            (
                3,
                "The account has no 2FA enrollment. This is only said after the database was \
                 read successfully.",
            ),
            (
                4,
                "The account is locked after 5 wrong codes in a row (30 s, doubling with each \
                 further failure up to 1 h); the code was not looked at, also not by `--resync` \
                 or `--diagnose`. See `mb-2fa-unlock`(8).",
            ),
            STORAGE_EXIT,
        ],
        audited: true,
        extra_env: &[],
        json: &[
            "`email`, `method` (`\"totp\"` or `\"backup_code\"`), `activated` (true when this code \
             activated a pending enrollment), `offset_steps` (where the code matched, in 30-second \
             steps from the server's clock), `drift_steps`, `backup_codes_left`.",
            "With `--resync`: `email`, `resynced`, `drift_steps`, `activated`. With `--diagnose`: \
             `email`, `server_time`, `ntp_synchronized`, `state`, `drift_steps`, \
             `failed_attempts`, `locked_until`, `finding`, `offset_steps`, `offset_seconds`, \
             `search_minutes`, `would_accept`, `advice`.",
        ],
        examples: &[
            ex(
                "Check a code; the first good one activates a pending enrollment:",
                "mb-2fa-verify --email alice@example.com --code 492039",
            ),
            ex(
                "Pass the code on standard input, so that it never shows in `ps`(1), and read the \
                 answer as JSON:",
                "echo \"$CODE\" | mb-2fa-verify --email alice@example.com --code - --json",
            ),
            ex(
                "Log in with a backup code (it works once):",
                "mb-2fa-verify --email alice@example.com --code 2C87-QC97-5JZ7",
            ),
            ex(
                "Find out why a user's code is refused (changes nothing):",
                "sudo mb-2fa-verify --email alice@example.com --code 923685 --diagnose",
            ),
            ex(
                "Follow a phone whose clock is off, with two consecutive codes from it:",
                "sudo mb-2fa-verify --email alice@example.com --resync 923685 506091",
            ),
            ex(
                "In a login script, branch on the exit status:",
                "printf '%s\\n' \"$code\" | mb-2fa-verify --email \"$user\" --code - --quiet\n\
                 case $? in 0) allow ;; 1|4) refuse ;; *) fail_closed ;; esac",
            ),
        ],
        see_also: &[
            "mb-2fa-enable",
            "mb-2fa-unlock",
            "mb-2fa-policy",
            "oathtool(1)",
        ],
    },
    Tool {
        name: "mb-2fa-disable",
        command: mb_2fa_disable::command,
        exit: &[
            (0, "The account's secret and backup codes are deleted."),
            (
                1,
                "With `--code`: the code was rejected; nothing was deleted.",
            ),
            (
                2,
                "Usage error or invalid input, including no confirmation: without a terminal to \
                 ask on (or with `--json`), `--yes` is required.",
            ),
            (3, "The account has no 2FA enrollment."),
            (
                4,
                "With `--code`: the account is locked after repeated wrong codes.",
            ),
            STORAGE_EXIT,
        ],
        audited: true,
        extra_env: &[],
        json: &["`email`, `disabled` (true)."],
        examples: &[
            ex(
                "Remove 2FA from an account whose phone is lost, after checking the user's \
                 identity (asks for confirmation):",
                "sudo mb-2fa-disable --email alice@example.com",
            ),
            ex(
                "The same from a script, which cannot answer the question:",
                "sudo mb-2fa-disable --email alice@example.com --yes --json",
            ),
            ex(
                "Self-service removal, which needs a valid code from the phone first:",
                "echo \"$CODE\" | sudo mb-2fa-disable --email alice@example.com \\\n    --code - --yes",
            ),
        ],
        see_also: &["mb-2fa-enable", "mb-2fa-list", "mb-2fa-audit"],
    },
    Tool {
        name: "mb-2fa-backup-codes",
        command: mb_2fa_backup_codes::command,
        exit: &[
            (
                0,
                "The new codes are stored and printed; the old ones no longer work.",
            ),
            USAGE_EXIT,
            (3, "The account has no 2FA enrollment."),
            (
                5,
                "Conflict: the enrollment was replaced while the codes were made; run the command again.",
            ),
            STORAGE_EXIT,
        ],
        audited: true,
        extra_env: &[],
        json: &[
            "`email`, `backup_codes` (an array of 10 strings, `XXXX-XXXX-XXXX`). It holds the \
             codes: keep it out of logs.",
        ],
        examples: &[
            ex(
                "Give a user new backup codes (their old ones were used up or leaked):",
                "sudo mb-2fa-backup-codes --email alice@example.com",
            ),
            ex(
                "Only the codes, one per line, to print for the user:",
                "sudo mb-2fa-backup-codes --email alice@example.com --quiet",
            ),
        ],
        see_also: &["mb-2fa-enable", "mb-2fa-verify", "mb-2fa-list"],
    },
    Tool {
        name: "mb-2fa-list",
        command: mb_2fa_list::command,
        exit: &[
            (0, "The list was printed (also when it is empty)."),
            USAGE_EXIT,
            STORAGE_EXIT,
        ],
        audited: false,
        extra_env: &[],
        json: &[
            "`accounts`, an array of objects with `email`, `state` (`\"pending\"` or \
             `\"active\"`), `issuer`, `created_at`, `activated_at`, `last_used_at` (RFC 3339 UTC \
             or null), `backup_codes_left`, `drift_steps`, `locked_until` (RFC 3339 UTC or \
             null) and `exemption`; and `exemptions`, an array of objects with `email`, `kind`, \
             `reason`, `created_at`, `created_by`, `used`, `used_at`.",
        ],
        examples: &[
            ex("Who has 2FA, and in what state:", "sudo mb-2fa-list"),
            ex("Emails only, one per line:", "sudo mb-2fa-list --quiet"),
            ex(
                "Accounts that enrolled but never verified a code:",
                "sudo mb-2fa-list --json \\\n    | jq -r '.accounts[] | select(.state == \"pending\") | .email'",
            ),
        ],
        see_also: &["mb-2fa-audit", "mb-2fa-policy"],
    },
    Tool {
        name: "mb-2fa-unlock",
        command: mb_2fa_unlock::command,
        exit: &[
            (
                0,
                "The lockout and the count of failed codes are cleared (also when the account was not locked).",
            ),
            USAGE_EXIT,
            (3, "The account has no 2FA enrollment."),
            STORAGE_EXIT,
        ],
        audited: true,
        extra_env: &[],
        json: &[
            "`email`, `unlocked` (true), `was_locked`, `failed_attempts` (the count it cleared), \
             `locked_until` (the lock it cleared, RFC 3339 UTC, or null).",
        ],
        examples: &[
            ex(
                "See the failed attempts of a user who is locked out:",
                "sudo mb-2fa-audit --email alice@example.com --limit 10",
            ),
            ex(
                "Then, once the user is identified, clear the lock:",
                "sudo mb-2fa-unlock --email alice@example.com",
            ),
        ],
        see_also: &["mb-2fa-verify", "mb-2fa-audit"],
    },
    Tool {
        name: "mb-2fa-audit",
        command: mb_2fa_audit::command,
        exit: &[
            (0, "The records were printed (also when none match)."),
            USAGE_EXIT,
            STORAGE_EXIT,
        ],
        audited: false,
        extra_env: &[],
        json: &[
            "`records`, newest first, an array of objects with `at` (RFC 3339 UTC), `tool`, \
             `action`, `email`, `outcome`, `actor`, `detail`.",
        ],
        examples: &[
            ex(
                "What happened to one account in the last week:",
                "sudo mb-2fa-audit --email alice@example.com --since 7d",
            ),
            ex(
                "Everything since a given time:",
                "sudo mb-2fa-audit --since 2026-11-28T09:00:00Z --limit 1000",
            ),
            ex(
                "Every lockout of the last day, as JSON:",
                "sudo mb-2fa-audit --json --since 24h --limit 1000 \\\n    | jq '.records[] | select(.outcome == \"locked\")'",
            ),
        ],
        see_also: &["mb-2fa-list", "syslog(3)"],
    },
    Tool {
        name: "mb-2fa-policy",
        command: mb_2fa_policy::command,
        exit: &[
            (0, "Success."),
            (
                0,
                "`check`: the decision is `code`: ask the user for a code, then run \
                 `mb-2fa-verify`(8).",
            ),
            USAGE_EXIT,
            (3, "`unexempt`, `seal`: the account has no exemption."),
            (
                5,
                "`seal`: the account's exemption is not a break-glass account.",
            ),
            (
                6,
                "`check`: the decision is `allow` (2FA not required, or the account is exempt) or \
                 `setup` (not enrolled yet, within the grace period): let the user in without a \
                 code.",
            ),
            (
                7,
                "`check`: the decision is `deny` (grace period over, or a mandatory role without \
                 2FA): keep the user out.",
            ),
            (
                10,
                "Storage error: the database could not be read or written.",
            ),
            (
                10,
                "`check`: keep the user out (fail closed). A front end MUST treat every exit \
                 status other than 0 and 6 as deny: allow (6) and a storage error (10) are both \
                 non-zero, so `if ...; then` or `|| allow` would let a broken store in. A tested \
                 snippet is `packaging/examples/login-check.sh` (also in the README).",
            ),
        ],
        audited: true,
        extra_env: &[],
        json: &[
            "`show`: `policy` (`require_all`, `require_all_since`, `grace_days`, \
             `mandatory_roles`, `issuer`), `exemptions`, `warnings`. `set`: `policy`, `warnings`. \
             `exempt`: `email`, `exemption`. `unexempt`: `email`, `removed`.",
            "`check`: `email`, `decision` (`\"code\"`, `\"allow\"`, `\"setup\"` or `\"deny\"`), \
             `enrollment` (`\"pending\"`, `\"active\"` or null), `exemption` (`\"service\"`, \
             `\"break-glass\"` or null), and, depending on the decision, `reason`, \
             `grace_days_left`, `deadline`.",
        ],
        examples: &[
            ex(
                "Require 2FA of every account, with 7 days to enroll, and name the appliance in \
                 the authenticator apps:",
                "sudo mb-2fa-policy set --require-all on --grace-days 7 \\\n    --issuer \"Mailborder - example.com\"",
            ),
            ex(
                "Keep one break-glass account, whose password is sealed offline:",
                "sudo mb-2fa-policy exempt --email breakglass@example.com \\\n    --kind break-glass --reason \"sealed envelope in the office safe\"",
            ),
            ex(
                "Exempt an account that never logs in interactively:",
                "sudo mb-2fa-policy exempt --email probe@example.com \\\n    --kind service --reason \"monitoring probe\"",
            ),
            ex(
                "The login front end's question at each login (branch on the exit status):",
                "mb-2fa-policy check --email alice@example.com --role super-admin --json",
            ),
            ex(
                "The policy, the exemptions and any warnings:",
                "sudo mb-2fa-policy show",
            ),
            ex(
                "After the break-glass account was used: rotate its password, then re-arm it:",
                "sudo mb-2fa-policy seal --email breakglass@example.com",
            ),
            ex(
                "Remove an exemption:",
                "sudo mb-2fa-policy unexempt --email probe@example.com",
            ),
        ],
        see_also: &[
            "mb-2fa-verify",
            "mb-2fa-enable",
            "mb-2fa-list",
            "pam_exec(8)",
        ],
    },
    Tool {
        name: "mb-2fa-import",
        command: mb_2fa_import::command,
        exit: &[
            (
                0,
                "The enrollments were imported, active at once (with `--dry-run`: they would be, \
                 and nothing was changed).",
            ),
            (
                2,
                "Usage error or invalid input: a bad line (the message names its number and what \
                 is wrong, never its text), a counter-based (HOTP) entry, a missing `--email` or \
                 `--domain`. Nothing was imported.",
            ),
            (
                5,
                "Conflict: an account already has 2FA and `--force` was not given. Nothing was \
                 imported.",
            ),
            STORAGE_EXIT,
        ],
        audited: true,
        extra_env: &[],
        json: &[
            "`source`, `dry_run`, `imported` (how many; 0 in a dry run), `accounts`, an array of \
             objects with `email`, `line`, `state` (`\"active\"`), `issuer`, `algorithm`, \
             `digits`, `period`, `replay_floor` (the highest step already used, or null), \
             `backup_codes` (how many scratch codes became backup codes), `replaced` (the state \
             of the enrollment it replaced, or null) and `notes`. Never a secret or a code.",
        ],
        examples: &[
            ex(
                "See what a user's google-authenticator file would become, then import it:",
                "sudo mb-2fa-import --from google-authenticator /home/alice/.google_authenticator \\\n    --email alice@example.com --dry-run",
            ),
            ex(
                "Import otpauth URIs exported from another server, one per line; each label's \
                 account is the email:",
                "sudo mb-2fa-import --from otpauth < uris.txt",
            ),
            ex(
                "Import pam_oath's users, whose names become user@example.com:",
                "sudo mb-2fa-import --from oath-users /etc/users.oath --domain example.com",
            ),
        ],
        see_also: &[
            "mb-2fa-enable",
            "mb-2fa-verify",
            "mb-2fa-backup-codes",
            "google-authenticator(1)",
            "oathtool(1)",
        ],
    },
    Tool {
        name: "mb-2fa-store",
        command: mb_2fa_store::command,
        exit: &[
            (
                0,
                "`init`: the store was created. `check`: every check passed. `seal-plaintext`: the \
                 secrets were sealed.",
            ),
            (
                0,
                "`backup`: FILE holds a checked copy of the store (not the key file).",
            ),
            USAGE_EXIT,
            (
                2,
                "`backup`: FILE names no file, is in a directory that does not exist, is a \
                 directory or is the store itself; or the store is a MariaDB store (use \
                 mariadb-dump --single-transaction, README \"Backups\").",
            ),
            (
                5,
                "`seal-plaintext`: the database already records a key; nothing was changed.",
            ),
            (
                5,
                "`backup`: FILE already exists (or is a symbolic link); nothing was written.",
            ),
            (
                10,
                "`init`: a database already exists there, or it could not be created. `check`: a \
                 check failed (the lines say which and how to fix it). `seal-plaintext`: a secret \
                 is not plaintext, or a storage or key error. Nothing was changed.",
            ),
            (
                10,
                "`backup`: the store could not be opened or read, the copy failed its check, the \
                 disk is full, or FILE's directory may be written by group or others. No FILE \
                 was written.",
            ),
        ],
        audited: true,
        extra_env: &[],
        json: &[
            "`init`: `db`, `key_file`, `key_fingerprint`. `check`: `checks` (each `name`, `ok`, \
             `detail`), `healthy`. `seal-plaintext`: `sealed`, `key_file`.",
            "`backup`: `file`, `from`, `accounts`, `schema_version`, `integrity`, `bytes`, \
             `key_included` (false), `key_file`.",
        ],
        examples: &[
            ex(
                "Create the store on a new appliance (or after deciding to start over):",
                "sudo mb-2fa-store init",
            ),
            ex(
                "Check that the store and the key can be trusted (exit 10 if not):",
                "sudo mb-2fa-store check",
            ),
            ex(
                "Back up an SQLite store while logins go on (then back up the key file apart):",
                "sudo mb-2fa-store backup /root/2fa-backups/2fa-$(date +%F).db",
            ),
            ex(
                "Seal the plaintext secrets of a version 1 database, once:",
                "sudo mb-2fa-store seal-plaintext",
            ),
        ],
        see_also: &["mb-2fa-enable", "mb-2fa-list", "sqlite3(1)"],
    },
];

/// The workspace version, which every tool reports with `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Splits a shell line into the words of each invocation of a tool in it:
/// from the tool's name up to the end of the pipeline stage. Knows single
/// and double quotes and backslashes, which is all the examples use.
#[cfg(test)]
pub fn invocations(line: &str) -> Vec<Vec<String>> {
    let mut stages: Vec<Vec<String>> = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    word.get_or_insert_default().push(n);
                }
            }
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '\\') => match chars.next() {
                // A continuation line: no word, no break.
                Some('\n') | None => {}
                Some(n) => word.get_or_insert_default().push(n),
            },
            (None, '|' | ';' | '(' | ')' | '>' | '<' | '&' | '\n') => {
                if let (Some(w), Some(stage)) = (word.take(), stages.last_mut()) {
                    stage.push(w);
                }
                stages.push(Vec::new());
            }
            (None, c) if c.is_whitespace() => {
                if let (Some(w), Some(stage)) = (word.take(), stages.last_mut()) {
                    stage.push(w);
                }
            }
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    if let (Some(w), Some(stage)) = (word.take(), stages.last_mut()) {
        stage.push(w);
    }
    stages
        .into_iter()
        .filter_map(|s| {
            let at = s.iter().position(|w| w.starts_with("mb-2fa-"))?;
            Some(s[at..].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Option<&'static Tool> {
        TOOLS.iter().find(|t| t.name == name)
    }

    #[test]
    fn every_example_parses_with_its_tools_options() {
        let mut seen = 0;
        for t in TOOLS {
            for e in t.examples {
                let calls = invocations(e.run);
                assert!(
                    !calls.is_empty(),
                    "{}: no tool in example {:?}",
                    t.name,
                    e.run
                );
                for words in calls {
                    let Some(other) = tool(&words[0]) else {
                        panic!("{}: unknown tool {:?} in {:?}", t.name, words[0], e.run)
                    };
                    if let Err(err) = (other.command)().try_get_matches_from(&words) {
                        panic!("{}: example {:?} does not parse:\n{err}", t.name, e.run);
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 20);
    }

    #[test]
    fn invocations_split_like_a_shell() {
        assert_eq!(
            invocations("echo \"$X\" | sudo mb-2fa-verify --email a@b.c --code - --json"),
            vec![vec![
                "mb-2fa-verify",
                "--email",
                "a@b.c",
                "--code",
                "-",
                "--json"
            ]]
        );
        assert_eq!(
            invocations("x=$(mb-2fa-enable --issuer \"A - B\" --qr none | jq -r .secret)"),
            vec![vec!["mb-2fa-enable", "--issuer", "A - B", "--qr", "none"]]
        );
        assert_eq!(
            invocations("mb-2fa-list --db x \\\n    --json | jq '.a | select(.b == \"c\")'"),
            vec![vec!["mb-2fa-list", "--db", "x", "--json"]]
        );
    }

    #[test]
    fn every_tool_crate_is_documented() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
        let mut names: Vec<String> = std::fs::read_dir(crates)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("mb-2fa-"))
            .collect();
        names.sort();
        let mut ours: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        ours.sort_unstable();
        assert_eq!(
            names, ours,
            "a tool crate without a man page, or the reverse"
        );
    }

    #[test]
    fn names_versions_and_exit_codes_agree() {
        for t in TOOLS {
            let cmd = (t.command)();
            assert_eq!(cmd.get_name(), t.name);
            assert_eq!(cmd.get_version(), Some(VERSION), "{}", t.name);
            assert!(t.exit.windows(2).all(|w| w[0].0 <= w[1].0), "{}", t.name);
            for code in [0, 2, 10] {
                assert!(
                    t.exit.iter().any(|e| e.0 == code),
                    "{} lacks {code}",
                    t.name
                );
            }
        }
    }
}
