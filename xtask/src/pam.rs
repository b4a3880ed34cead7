//! `pam_mb2fa(8)`: the PAM module. Hand-written (the module has no clap
//! definition); its defaults come from the module's own constants and the
//! paths from the core's, so the page cannot drift from what the module
//! does. The setup steps use the examples shipped in
//! `packaging/examples/` (installed in /usr/share/doc/mb-2fa/examples).

use std::path::PathBuf;

use anyhow::Result;
use clap_mangen::roff::{Roff, bold, italic, roman};
use mb2fa_core::config::DEFAULT_CONFIG_PATH;
use mb2fa_core::key_file::DEFAULT_KEY_PATH;
use mb2fa_core::policy::{DEFAULT_GRACE_DAYS, DEFAULT_MANDATORY_ROLE};
use mb2fa_core::store::DEFAULT_DB_PATH;
use pam_mb2fa::options::{DEFAULT_BINDIR, DEFAULT_PROMPT, DEFAULT_TIMEOUT};
use pam_mb2fa::runner::TOOL;

use crate::Output;
use crate::man::{MANUAL, SECTION, layout, source};
use crate::markup::{inlines, item, para, references, section};

/// Where the Debian package installs the module (amd64).
pub const DEB_MODULE: &str = "/lib/x86_64-linux-gnu/security/pam_mb2fa.so";
/// Where the packages put the examples.
pub const EXAMPLES: &str = "/usr/share/doc/mb-2fa/examples";
/// The examples, relative to `packaging/examples/` and to [`EXAMPLES`].
pub const EXAMPLE_FILES: &[&str] = &[
    "sshd_config.d/mb-2fa.conf",
    "pam.d/sshd-mb2fa",
    "pam.d/sudo-mb2fa",
];
/// The module line of the examples and of this page.
const LINE: &str = "auth       required     pam_mb2fa.so account=%u@example.com";

/// Literal lines, as `markup::example`, then hyphenation off again: groff's
/// `.EE` turns it back on, and the page would then split option names.
fn example(roff: &mut Roff, lines: &str) {
    crate::markup::example(roff, lines);
    roff.control("nh", []);
}

/// A numbered step of a procedure.
fn step(roff: &mut Roff, n: usize, text: &str) {
    roff.control("IP", [&format!("{n}."), "4"]);
    roff.text(inlines(text));
}

pub fn page(date: &str) -> Result<Output> {
    let tool = format!("{DEFAULT_BINDIR}/{TOOL}");
    let timeout = DEFAULT_TIMEOUT.as_secs();
    let prompt = DEFAULT_PROMPT.trim_end();
    let mut r = Roff::new();
    r.control("TH", ["PAM_MB2FA", SECTION, date, &source(), MANUAL]);
    r.extend([layout()]);

    section(&mut r, "NAME");
    r.text([roman(
        "pam_mb2fa - PAM module that asks SSH, sudo and console logins for the mb-2fa code",
    )]);

    section(&mut r, "SYNOPSIS");
    r.text([
        bold("auth required pam_mb2fa.so"),
        roman(" "),
        bold("account="),
        italic("TEMPLATE"),
        roman("|"),
        bold("map="),
        italic("FILE"),
        roman(" ["),
        italic("options"),
        roman("]"),
    ]);

    section(&mut r, "DESCRIPTION");
    r.text(inlines(
        "`pam_mb2fa.so` adds the second factor of mb-2fa (a TOTP code from the user's phone, \
         or a backup code) to logins through PAM: `sshd`(8), `sudo`(8), `login`(1). It is a \
         thin module: it asks the questions, and the installed tools decide. No database, key \
         or cryptographic code runs inside sshd or sudo, and the rules are the same as for \
         every other mb-2fa front end: the policy, the grace period, the exemptions, the \
         lockout, the replay protection and the audit trail. It provides the `auth` \
         functions only (`pam_sm_setcred` sets no credentials and succeeds); put it on an \
         `auth` line.",
    ));
    para(
        &mut r,
        &format!(
            "At each login the module maps the PAM user to a 2FA account (`account=` or \
             `map=`), checks that it can trust the tool, and runs *{tool}* `--json --login` with \
             a fixed argument list (the account, the PAM service, user, remote host and \
             terminal, the `role=` options and `config=`), an empty environment (only \
             `PATH`), */* as its directory and standard error discarded. The tool applies the \
             policy (`mb-2fa-policy`(8)) and answers with one JSON line, the decision. Only \
             when the decision is *code* does the module prompt for it (`{prompt}`, echo \
             off) and write it to the same process's standard input; the tool verifies it and \
             answers with a second line. Each answer must come within `timeout=` seconds \
             (default {timeout}), or the tool is killed. The module trims the code; an empty \
             one, one longer than 64 characters or one with control characters is not passed \
             on. The decision and its exit status must agree, or the login fails."
        ),
    );
    para(&mut r, "What the module returns to the PAM stack:");
    item(
        &mut r,
        "Code accepted (exit 0)",
        "`PAM_SUCCESS`. The first good code also activates a pending enrollment.",
    );
    item(
        &mut r,
        "Wrong, replayed or already used code (exit 1), no enrollment any more (exit 3)",
        "`PAM_AUTH_ERR`. Each wrong code counts towards the lockout.",
    );
    item(
        &mut r,
        "Locked after repeated wrong codes (exit 4)",
        "`PAM_MAXTRIES`, and the user is told until when (an error message).",
    );
    item(
        &mut r,
        "*allow* (exit 6: 2FA not required, or the account is exempt)",
        "`PAM_SUCCESS` without a prompt. A break-glass account is also alerted by the tool.",
    );
    item(
        &mut r,
        "*setup* (exit 6: not enrolled, within the grace period)",
        "`PAM_SUCCESS` without a prompt, and an informational message that names the \
         deadline and says to ask an administrator to enroll the account.",
    );
    item(
        &mut r,
        "*deny* (exit 7)",
        "`PAM_AUTH_ERR`, and the user is told why (`Access denied: ...`).",
    );
    item(
        &mut r,
        "Anything else",
        "`PAM_AUTH_ERR`: fail closed. That is the tool missing or not trusted (see \
         `bindir=`), exit 10 (the database or the key cannot be read), any other exit status \
         or a decision that does not match it, a timeout, a crash, output that is not the \
         protocol, a user the map file does not list or a map file that cannot be trusted, a \
         PAM user that is not a plain user name, a conversation that fails, and no code or \
         not one a person types.",
    );
    item(
        &mut r,
        "Bad module options, or a bug",
        "`PAM_SERVICE_ERR`, which fails the stack as well: an unknown option, one given twice \
         or without its value, neither `account=` nor `map=`. A panic never crosses into the \
         application; it is caught at the boundary.",
    );
    para(
        &mut r,
        "The module writes why it kept someone out to syslog with `pam_syslog`(3), in the \
         application's log (facility authpriv, e.g. `journalctl -u ssh`, */var/log/auth.log*), \
         prefixed `pam_mb2fa(sshd:auth):`; with `debug` also the logins it let in. The user \
         is never told more than the messages above.",
    );
    para(
        &mut r,
        "The tool reads the root-only database and key: the module works in programs that \
         authenticate as root (sshd, sudo, login, su), and fails closed in others (a screen \
         locker running as the user).",
    );

    section(&mut r, "OPTIONS");
    r.text(inlines(
        "Exactly one of `account=` and `map=` is needed. Paths must be absolute. A value with \
         spaces is written in square brackets, the whole option inside: \
         `[prompt=2FA code: ]` (`pam.conf`(5)).",
    ));
    item(
        &mut r,
        "`account=`*TEMPLATE*",
        "The 2FA account (an email address) of the PAM user: `%u` is the user name, `%%` a \
         literal `%`; the template must contain `%u`, and any other `%` is refused. Example: \
         `account=%u@example.com`. The PAM user must be a plain user name (letters, digits, \
         `.`, `_`, `-`, `@`, a trailing `$`, at most 64 bytes, not starting with `-`); any \
         other is refused.",
    );
    item(
        &mut r,
        "`map=`*FILE*",
        "Look the account up in *FILE*, lines `user email` (blank lines and lines starting \
         with `#` are skipped), e.g. */etc/mailborder/2fa-users*. The file must be a regular \
         file (not a symbolic link) owned by root, writable by no one else, and at most 1 MiB: \
         whoever can write it chooses whose code a login asks for. A malformed line or a user \
         listed twice makes the whole file an error; a user it does not list is refused \
         (`PAM_AUTH_ERR`).",
    );
    item(
        &mut r,
        "`prompt=`*TEXT*",
        &format!("What the user is asked. Default: `{prompt}` (with a trailing space)."),
    );
    item(
        &mut r,
        "`config=`*FILE*",
        &format!(
            "Passed to the tool as `--config` *FILE*. Without it the tool reads \
             *{DEFAULT_CONFIG_PATH}* if it exists."
        ),
    );
    item(
        &mut r,
        "`bindir=`*DIR*",
        &format!(
            "Where *{TOOL}* is. Default: *{DEFAULT_BINDIR}*. The directory must be owned by \
             root and writable by no one else, and the tool in it a regular file (not a \
             symbolic link) owned by root, executable, and writable by no one else; otherwise \
             the login fails closed, since a tool someone else could replace would decide \
             logins."
        ),
    );
    item(
        &mut r,
        "`timeout=`*SECONDS*",
        &format!(
            "How long the tool may take to answer, each time: the decision, the verification \
             and its exit. Whole seconds from 1 to 120; default {timeout}. The time the user \
             takes to type is not counted (sshd's `LoginGraceTime` bounds that)."
        ),
    );
    item(
        &mut r,
        "`role=`*NAME*",
        &format!(
            "A role of the account, passed to the policy (`--role`); repeat it for several. \
             Letters, digits and `-`, `_`, `.` only. Once 2FA is required, an account with a \
             mandatory role (default `{DEFAULT_MANDATORY_ROLE}`, see `mb-2fa-policy-set`(8)) \
             gets no grace period: not enrolled means *deny*."
        ),
    );
    item(
        &mut r,
        "`debug`",
        "Also log the logins the module let in, and how (priority debug). Refusals are always \
         logged.",
    );

    section(&mut r, "SETUP");
    r.text(inlines(
        "SSH with a key and a code, on a Debian machine. Keep the root shell you do this in \
         open until step 10 has worked.",
    ));
    step(
        &mut r,
        1,
        &format!(
            "Install the package: `sudo apt install ./mb-2fa_`*VERSION*`_amd64.deb`. The module \
             is *{DEB_MODULE}*, the tools are in */usr/sbin*, and the examples in \
             *{EXAMPLES}*. Nothing under */etc/pam.d* or */etc/ssh* changes."
        ),
    );
    step(
        &mut r,
        2,
        &format!(
            "The store. The defaults need no configuration: the database *{DEFAULT_DB_PATH}* \
             and the key *{DEFAULT_KEY_PATH}*, both made by the first enrollment (or beforehand, \
             empty, by `sudo mb-2fa-store init`). For a MariaDB store shared by the nodes of a \
             cluster, write *{DEFAULT_CONFIG_PATH}* first (`mb-2fa`(8)). \
             `sudo mb-2fa-store check` checks the store."
        ),
    );
    step(
        &mut r,
        3,
        "Enroll each user who logs in over SSH, under the account the module will ask for \
         (here `account=%u@example.com`, so user alice is alice@example.com):",
    );
    example(&mut r, "sudo mb-2fa-enable --email alice@example.com");
    step(
        &mut r,
        4,
        "Alice scans the QR code with her authenticator app and keeps the backup codes. \
         Verify one code from the app, which activates the enrollment and shows that the \
         phone is right:",
    );
    example(
        &mut r,
        "sudo mb-2fa-verify --email alice@example.com --code 492039",
    );
    step(
        &mut r,
        5,
        &format!(
            "Decide the policy. On a fresh install 2FA is not required, so a user who is not \
             enrolled logs in with the key alone (*allow*). To require it of everyone, with \
             {DEFAULT_GRACE_DAYS} days to enroll (*setup*, then *deny*): \
             `sudo mb-2fa-policy set --require-all on`."
        ),
    );
    step(
        &mut r,
        6,
        "Copy the sshd drop-in, which sets `KbdInteractiveAuthentication yes`, `UsePAM yes` \
         and `AuthenticationMethods publickey,keyboard-interactive:pam` (the key first, then \
         the code; each line is explained in it):",
    );
    example(
        &mut r,
        &format!("sudo cp {EXAMPLES}/sshd_config.d/mb-2fa.conf /etc/ssh/sshd_config.d/"),
    );
    step(
        &mut r,
        7,
        &format!(
            "Edit the PAM stack of sshd (`sudoedit /etc/pam.d/sshd`; *{EXAMPLES}/pam.d/sshd-mb2fa* \
             shows it): comment out `@include common-auth`, so that no password is asked after \
             the key, and put the module in its place:"
        ),
    );
    example(
        &mut r,
        &format!("# Standard Un*x authentication.\n#@include common-auth\n{LINE}"),
    );
    step(&mut r, 8, "Check the configuration, and what is in effect:");
    example(
        &mut r,
        "sudo sshd -t\nsudo sshd -T | grep -i -e authenticationmethods -e kbdinteractive",
    );
    step(
        &mut r,
        9,
        "Reload sshd (sessions that are open stay open): `sudo systemctl reload ssh`.",
    );
    step(
        &mut r,
        10,
        &format!(
            "From a SECOND terminal, log in: `ssh alice@`*host*. After the key, sshd asks \
             `{prompt}`. Try a wrong code too, and look at the audit trail: \
             `sudo mb-2fa-audit --email alice@example.com --limit 5`. Only then close the \
             first root shell."
        ),
    );

    section(&mut r, "SUDO");
    r.text(inlines(&format!(
        "Put the module right after `@include common-auth` in */etc/pam.d/sudo* \
         (*{EXAMPLES}/pam.d/sudo-mb2fa*): the password first, then the code."
    )));
    example(&mut r, &format!("@include common-auth\n{LINE}"));
    para(
        &mut r,
        "The PAM user is the user who runs sudo (unless `rootpw`, `targetpw` or `runaspw` are \
         set in `sudoers`(5)), so the code asked is that user's. sudo runs the auth stack only \
         when it would ask for a password: a rule with `NOPASSWD` skips the whole stack, so no \
         code is asked either; and for `timestamp_timeout` after a successful sudo (`sudo -V` \
         run as root shows it) sudo asks for neither. `sudo -k` forgets the timestamp, for a \
         test.",
    );

    section(&mut r, "HOW NOT TO LOCK YOURSELF OUT");
    item(
        &mut r,
        "Keep a root shell open",
        "Keep the shell in which you change */etc/ssh* or */etc/pam.d* open, and log in from \
         a second session before you close it. Reloading or restarting sshd does not end open \
         sessions.",
    );
    item(
        &mut r,
        "A break-glass account",
        "Keep one account exempt from 2FA, its credentials kept offline: `sudo mb-2fa-policy exempt \
         --email breakglass@example.com --kind break-glass --reason \"sealed envelope\"`. Its \
         logins through the module are allowed without a code (with `account=%u@example.com`, \
         for the user `breakglass`), and every one is alerted; re-arm it afterwards with \
         `mb-2fa-policy seal`. The exemption is in the store: when the database or the key \
         cannot be read, the module fails closed for every account, the break-glass account \
         included.",
    );
    item(
        &mut r,
        "A way in without the module",
        "Leave */etc/pam.d/login* alone (or keep the break-glass path there), and make sure \
         of console access (the machine's console, a hypervisor or an out-of-band \
         controller). Never put the module into *common-auth*: every service would use it.",
    );
    item(
        &mut r,
        "root over SSH",
        "sshd lets root through keyboard-interactive only with `PermitRootLogin yes`, and \
         Debian's default is `prohibit-password`: under `AuthenticationMethods \
         publickey,keyboard-interactive:pam` root cannot log in over SSH at all, with a key \
         or without. Log in as a normal admin user and use sudo, or, as a deliberate \
         exception, let root in with the key alone: a `Match User root` block with \
         `AuthenticationMethods publickey` (commented out in the drop-in).",
    );
    item(
        &mut r,
        "Before removing the package",
        "Take the module's lines out of */etc/pam.d* first. Removing the package leaves \
         */etc/pam.d* and */etc/ssh* as they are, and a `required` line whose module is \
         missing fails every login of that service (a `-auth` line skips the second factor \
         without a word). So the package refuses to be removed while a line of */etc/pam.d* \
         that is not a comment names *pam_mb2fa*, and names the files; \
         `MB2FA_REMOVE_IN_USE=1` removes it anyway. Upgrades are not refused.",
    );
    item(
        &mut r,
        "Enroll before you require",
        "Once `mb-2fa-policy set --require-all on` is on and the grace period is over, an \
         account that is not enrolled is denied. `mb-2fa-list` shows who is enrolled; \
         `mb-2fa-unlock` clears a lockout; a lost phone is in `mb-2fa`(8), RECOVERY.",
    );

    section(&mut r, "STACK ORDER");
    r.text(inlines(
        "Whoever reaches the module learns something about the account: whether it is asked \
         for a code (enrolled), let in without one (not required, exempt, grace period), told \
         it is locked and until when, or denied. So the module goes after the first factor, \
         never before it:",
    ));
    item(
        &mut r,
        "SSH",
        "`AuthenticationMethods publickey,keyboard-interactive:pam`: sshd runs the PAM stack \
         only for a client that has proven its key. `keyboard-interactive:pam` alone would \
         show the module to anyone.",
    );
    item(
        &mut r,
        "sudo, login",
        "The module goes after `@include common-auth`, where a wrong password stops the stack \
         (`pam_deny` is `requisite` there) before the module runs. In a stack of your own, make the first \
         factor `requisite`.",
    );
    para(
        &mut r,
        "Use the module as `required` (or `requisite`), never `sufficient` or `optional`: an \
         *allow* or *setup* decision is `PAM_SUCCESS`, and `sufficient` would end the stack \
         there.",
    );

    section(&mut r, "AUDIT");
    r.text(inlines(
        "The tool records every login decision and every verification in the audit trail, \
         like any other mb-2fa command, with where the login came from in the `via` field: \
         the PAM service, user, remote host and terminal, e.g. `pam service=sshd user=alice \
         rhost=192.0.2.7 tty=ssh`. The records also go to syslog (facility auth, identifier \
         mb-2fa); the actor is root.",
    ));
    example(
        &mut r,
        "sudo mb-2fa-audit --email alice@example.com --since 24h\n\
         sudo mb-2fa-audit --email alice@example.com --limit 1 --json",
    );

    section(&mut r, "FILES");
    item(
        &mut r,
        &format!("*{DEB_MODULE}*"),
        "The module (Debian, amd64; the RPM package puts it in */usr/lib64/security*).",
    );
    item(
        &mut r,
        &format!("*{tool}*"),
        "The tool the module runs (`bindir=`).",
    );
    item(
        &mut r,
        &format!("*{DEFAULT_CONFIG_PATH}*"),
        "The tools' configuration file, when it exists (`config=` names another).",
    );
    item(
        &mut r,
        &format!("*{DEFAULT_DB_PATH}*, *{DEFAULT_KEY_PATH}*"),
        "The database and the key, read by the tool, never by the module.",
    );
    item(
        &mut r,
        "*/etc/mailborder/2fa-users*",
        "A map file for `map=`, if you use one (the package does not make it).",
    );
    item(
        &mut r,
        "*/etc/pam.d/sshd*, */etc/pam.d/sudo*",
        "The PAM stacks the module is added to.",
    );
    item(
        &mut r,
        "*/etc/ssh/sshd_config.d/mb-2fa.conf*",
        "The sshd drop-in, once copied.",
    );
    let examples: Vec<String> = EXAMPLE_FILES.iter().map(|f| format!("*{f}*")).collect();
    item(
        &mut r,
        &format!("*{EXAMPLES}/*"),
        &format!("The examples: {}.", examples.join(", ")),
    );

    section(&mut r, "SEE ALSO");
    r.text(references([
        "mb-2fa",
        "mb-2fa-verify",
        "mb-2fa-policy",
        "mb-2fa-audit",
        "sshd_config(5)",
        "pam.conf(5)",
        "sudoers(5)",
    ]));

    Ok(Output {
        path: PathBuf::from(format!("man/pam_mb2fa.{SECTION}")),
        bytes: r.render().into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::workspace_root;

    fn read(rel: &str) -> String {
        fs::read_to_string(workspace_root().unwrap().join(rel)).unwrap()
    }

    /// The module line of each PAM example, and of this page, is one the
    /// module accepts.
    #[test]
    fn the_examples_module_lines_parse() {
        let mut lines = vec![LINE.to_string()];
        for f in ["pam.d/sshd-mb2fa", "pam.d/sudo-mb2fa"] {
            let text = read(&format!("packaging/examples/{f}"));
            let found: Vec<String> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#') && l.contains("pam_mb2fa.so"))
                .map(str::to_string)
                .collect();
            assert_eq!(found.len(), 1, "{f}: one module line");
            lines.extend(found);
        }
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[..3], ["auth", "required", "pam_mb2fa.so"], "{line}");
            let args: Vec<String> = words[3..].iter().map(|w| w.to_string()).collect();
            pam_mb2fa::options::parse(&args).unwrap();
        }
    }

    /// Every option the page documents is one the module takes.
    #[test]
    fn the_documented_options_parse() {
        for extra in [
            "prompt=Code:",
            "config=/etc/mailborder/2fa.toml",
            "bindir=/usr/sbin",
            "timeout=120",
            "role=super-admin",
            "debug",
        ] {
            let args = vec!["account=%u@example.com".to_string(), extra.to_string()];
            pam_mb2fa::options::parse(&args).unwrap();
        }
        let map = vec!["map=/etc/mailborder/2fa-users".to_string()];
        pam_mb2fa::options::parse(&map).unwrap();
    }

    /// Both packages refuse removal on the same test of /etc/pam.d (the
    /// .deb's is run by package-smoke; rpm is not on the CI machine).
    #[test]
    fn both_packages_refuse_removal_while_pam_loads_the_module() {
        let prerm = read("packaging/deb/maintainer-scripts/prerm");
        let rpm = read("packaging/rpm/mb-2fa.spec");
        let test = "grep -lsE '^[[:space:]]*[^#[:space:]].*pam_mb2fa' /etc/pam.d/*";
        let preun = rpm
            .split("\n%preun\n")
            .nth(1)
            .and_then(|rest| rest.split("\n%").next())
            .expect("the spec has %preun");
        for (name, script) in [("prerm", prerm.as_str()), ("%preun", preun)] {
            assert!(script.contains(test), "{name} lacks the test");
            assert!(script.contains("MB2FA_REMOVE_IN_USE"), "{name}");
            assert!(script.contains("exit 1"), "{name} does not refuse");
        }
    }

    /// Both packages install the module and the examples.
    #[test]
    fn packages_ship_the_module_and_the_examples() {
        let deb = read("packaging/deb/Cargo.toml");
        let rpm = read("packaging/rpm/mb-2fa.spec");
        assert!(deb.contains(&format!(
            "[\"target/release/libpam_mb2fa.so\", \"{}\", \"644\"]",
            DEB_MODULE.trim_start_matches('/')
        )));
        assert!(rpm.contains("%{_libdir}/security/pam_mb2fa.so"));
        for f in EXAMPLE_FILES {
            assert!(
                workspace_root()
                    .unwrap()
                    .join("packaging/examples")
                    .join(f)
                    .is_file(),
                "{f}"
            );
            assert!(
                deb.contains(&format!("\"{}/{f}\"", EXAMPLES.trim_start_matches('/'))),
                "{f} is not in the .deb"
            );
            assert!(rpm.contains(f), "{f} is not in the RPM");
        }
    }

    #[test]
    fn the_page_names_the_defaults() {
        let page = String::from_utf8(page("unreleased").unwrap().bytes).unwrap();
        for want in [
            "AuthenticationMethods",
            DEFAULT_BINDIR,
            "Verification code:",
            "PAM_MAXTRIES",
            "PAM_SERVICE_ERR",
        ] {
            assert!(page.contains(want), "{want}");
        }
    }
}
