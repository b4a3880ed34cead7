//! `pam_mb2fa.so`: SSH, sudo and console logins ask for the mb-2fa code.
//!
//! The module asks and the tools decide: it maps the PAM user to a 2FA
//! account, runs the installed `mb-2fa-verify --login` (root-owned, fixed
//! argv, clean environment, a time limit), prompts for a code only when the
//! tool's policy decision says a code is needed, hands the code over on
//! stdin, and turns the outcome into a PAM result. No database, key or
//! crypto code runs inside sshd or sudo, and there is one rule set: the
//! core's. Anything unexpected fails closed (`PAM_AUTH_ERR`). See
//! pam_mb2fa(8).

use std::ffi::{OsString, c_int};

use serde_json::Value;
use zeroize::Zeroizing;

mod ffi;
pub mod options;
pub mod runner;

use ffi::{
    LOG_DEBUG, LOG_ERR, LOG_NOTICE, PAM_AUTH_ERR, PAM_MAXTRIES, PAM_RHOST, PAM_SERVICE,
    PAM_SERVICE_ERR, PAM_SUCCESS, PAM_TTY,
};
use options::{Account, Options};
use runner::{Answer, Failure, Running};

/// Longest code passed on: a TOTP code or a backup code is far shorter.
const MAX_CODE: usize = 64;

/// What the module needs of libpam (a trait, so the flow is tested without
/// a PAM stack).
pub trait Host {
    fn user(&self) -> Option<String>;
    fn item(&self, item_type: c_int) -> Option<String>;
    fn prompt(&self, text: &str) -> Result<Zeroizing<String>, c_int>;
    fn info(&self, text: &str);
    fn error(&self, text: &str);
    fn log(&self, priority: c_int, text: &str);
}

/// `text` as it may be shown on a terminal or written to syslog: a control,
/// bidi or other format character becomes `?`, and it is cut at `max`
/// characters.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            let format = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
            if c.is_control() || format { '?' } else { c }
        })
        .collect()
}

/// The whole login: `PAM_SUCCESS` only on a clear yes from the tool.
pub fn authenticate(host: &dyn Host, args: &[String]) -> c_int {
    let opts = match options::parse(args) {
        Ok(o) => o,
        Err(why) => {
            host.log(
                LOG_ERR,
                &format!("bad module options: {why}; failing closed"),
            );
            return PAM_SERVICE_ERR;
        }
    };
    let Some(user) = host.user() else {
        host.log(LOG_ERR, "no PAM user; failing closed");
        return PAM_AUTH_ERR;
    };
    if !options::plain_user(&user) {
        host.log(
            LOG_NOTICE,
            "the PAM user is not a plain user name; failing closed",
        );
        return PAM_AUTH_ERR;
    }
    let email = match &opts.account {
        Account::Template(t) => options::from_template(t, &user),
        Account::Map(path) => match options::from_map(path, &user) {
            Ok(Some(email)) => email,
            Ok(None) => {
                host.log(
                    LOG_NOTICE,
                    &format!(
                        "user {user} is not in map file {}; failing closed",
                        path.display()
                    ),
                );
                return PAM_AUTH_ERR;
            }
            Err(why) => {
                host.log(
                    LOG_ERR,
                    &format!("{}; failing closed", printable(&why, 300)),
                );
                return PAM_AUTH_ERR;
            }
        },
    };
    let service = host.item(PAM_SERVICE).unwrap_or_else(|| "?".to_string());
    let rhost = host.item(PAM_RHOST);
    let tty = host.item(PAM_TTY);
    let argv = tool_args(
        &opts,
        &email,
        &service,
        &user,
        rhost.as_deref(),
        tty.as_deref(),
    );
    let verdict = ffi::with_default_sigchld(|| converse(host, &opts, &argv));
    let (rc, what) = match verdict {
        Ok(v) => v,
        Err(f) => {
            host.log(
                LOG_ERR,
                &format!("{}; failing closed", printable(&f.to_string(), 300)),
            );
            return PAM_AUTH_ERR;
        }
    };
    if opts.debug || rc != PAM_SUCCESS {
        let level = if rc == PAM_SUCCESS {
            LOG_DEBUG
        } else {
            LOG_NOTICE
        };
        host.log(
            level,
            &format!("user {user} ({}): {what}", printable(&email, 254)),
        );
    }
    rc
}

/// The fixed argv of `mb-2fa-verify --login`.
pub fn tool_args(
    opts: &Options,
    email: &str,
    service: &str,
    user: &str,
    rhost: Option<&str>,
    tty: Option<&str>,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["--json".into(), "--login".into()];
    if let Some(config) = &opts.config {
        argv.push("--config".into());
        argv.push(config.into());
    }
    for (flag, value) in [
        ("--email", Some(email)),
        ("--pam-service", Some(service)),
        ("--pam-user", Some(user)),
        ("--pam-rhost", rhost),
        ("--pam-tty", tty),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            // --opt=value: a value starting with - stays a value.
            argv.push(format!("{flag}={v}").into());
        }
    }
    for role in &opts.roles {
        argv.push(format!("--role={role}").into());
    }
    argv
}

/// Run the tool and talk to the user; the PAM result and what happened.
fn converse(
    host: &dyn Host,
    opts: &Options,
    argv: &[OsString],
) -> Result<(c_int, String), Failure> {
    let tool = runner::trusted_tool(&opts.bindir)?;
    let mut run = Running::start(&tool, argv, opts.timeout)?;
    let first = run
        .next_doc()?
        .ok_or_else(|| Failure::Protocol("no answer".to_string()))?;
    if first["ok"] != Value::Bool(true) || first["decision"] != "code" {
        let answer = run.finish(first)?;
        return Ok(judge_decision(host, &answer));
    }
    let code = match host.prompt(&opts.prompt) {
        Ok(code) => code,
        Err(_) => {
            run.send(None);
            return Ok((PAM_AUTH_ERR, "no code: the conversation failed".to_string()));
        }
    };
    let code = Zeroizing::new(code.trim().to_string());
    if code.is_empty() || code.len() > MAX_CODE || code.chars().any(char::is_control) {
        run.send(None);
        return Ok((
            PAM_AUTH_ERR,
            "no code, or not one a person types".to_string(),
        ));
    }
    run.send(Some(&code));
    drop(code);
    let last = run
        .next_doc()?
        .ok_or_else(|| Failure::Protocol("no verification answer".to_string()))?;
    let answer = run.finish(last)?;
    Ok(judge_verify(host, &answer))
}

fn message(doc: &Value) -> Option<String> {
    doc["message"]
        .as_str()
        .or_else(|| doc["error"]["message"].as_str())
        .map(|m| printable(m, 500))
}

/// A decision other than `code`: the exit status and the document must
/// agree (6 with allow or setup lets in; 7 with deny keeps out).
pub fn judge_decision(host: &dyn Host, a: &Answer) -> (c_int, String) {
    let decision = a.doc["decision"].as_str().unwrap_or("");
    let ok = a.doc["ok"] == Value::Bool(true);
    match (ok, decision, a.exit) {
        (true, "allow", Some(6)) => (
            PAM_SUCCESS,
            "allowed without a code by the policy".to_string(),
        ),
        (true, "setup", Some(6)) => {
            if let Some(m) = message(&a.doc) {
                host.info(&m);
            }
            (
                PAM_SUCCESS,
                "let in to set up 2FA (grace period)".to_string(),
            )
        }
        (true, "deny", Some(7)) => {
            if let Some(m) = message(&a.doc) {
                host.error(&m);
            }
            (PAM_AUTH_ERR, "denied by the policy".to_string())
        }
        _ => (
            PAM_AUTH_ERR,
            format!(
                "{TOOL} exit {} ({}); failing closed",
                a.exit
                    .map_or_else(|| "by a signal".to_string(), |c| c.to_string()),
                printable(a.doc["error"]["kind"].as_str().unwrap_or("no decision"), 40),
                TOOL = runner::TOOL
            ),
        ),
    }
}

/// The verification: exit 0 with an accepted code lets in; 4 is the
/// lockout, said with its time; everything else keeps out.
pub fn judge_verify(host: &dyn Host, a: &Answer) -> (c_int, String) {
    let ok = a.doc["ok"] == Value::Bool(true);
    match (ok, a.exit) {
        (true, Some(0)) if a.doc["phase"] == "verify" => {
            let method = printable(a.doc["method"].as_str().unwrap_or("?"), 20);
            (PAM_SUCCESS, format!("code accepted ({method})"))
        }
        (false, Some(4)) => {
            if let Some(m) = message(&a.doc) {
                host.error(&m);
            }
            (
                PAM_MAXTRIES,
                "locked after repeated wrong codes".to_string(),
            )
        }
        (false, Some(1)) => (PAM_AUTH_ERR, "code rejected".to_string()),
        (false, Some(3)) => (PAM_AUTH_ERR, "no 2FA enrollment (any more)".to_string()),
        _ => (
            PAM_AUTH_ERR,
            format!(
                "{} exit {} ({}); failing closed",
                runner::TOOL,
                a.exit
                    .map_or_else(|| "by a signal".to_string(), |c| c.to_string()),
                printable(a.doc["error"]["kind"].as_str().unwrap_or("?"), 40)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Fake {
        said: RefCell<Vec<String>>,
    }

    impl Host for Fake {
        fn user(&self) -> Option<String> {
            Some("alice".into())
        }
        fn item(&self, _: c_int) -> Option<String> {
            None
        }
        fn prompt(&self, _: &str) -> Result<Zeroizing<String>, c_int> {
            Ok(Zeroizing::new("123456".into()))
        }
        fn info(&self, text: &str) {
            self.said.borrow_mut().push(format!("info: {text}"));
        }
        fn error(&self, text: &str) {
            self.said.borrow_mut().push(format!("error: {text}"));
        }
        fn log(&self, _: c_int, _: &str) {}
    }

    fn answer(doc: Value, exit: Option<i32>) -> Answer {
        Answer { doc, exit }
    }

    #[test]
    fn decisions_need_the_exit_status_and_the_document_to_agree() {
        let h = Fake::default();
        let allow = json!({"ok": true, "decision": "allow"});
        assert_eq!(
            judge_decision(&h, &answer(allow.clone(), Some(6))).0,
            PAM_SUCCESS
        );
        for exit in [Some(0), Some(7), Some(10), None] {
            assert_eq!(
                judge_decision(&h, &answer(allow.clone(), exit)).0,
                PAM_AUTH_ERR
            );
        }
        let deny = json!({"ok": true, "decision": "deny", "message": "Access denied: x\u{1b}[2J."});
        assert_eq!(
            judge_decision(&h, &answer(deny.clone(), Some(6))).0,
            PAM_AUTH_ERR
        );
        assert_eq!(judge_decision(&h, &answer(deny, Some(7))).0, PAM_AUTH_ERR);
        assert_eq!(h.said.borrow().as_slice(), ["error: Access denied: x?[2J."]);
        let setup = json!({"ok": true, "decision": "setup", "message": "enroll"});
        assert_eq!(judge_decision(&h, &answer(setup, Some(6))).0, PAM_SUCCESS);
        let storage = json!({"ok": false, "error": {"kind": "storage", "message": "x"}});
        assert_eq!(
            judge_decision(&h, &answer(storage, Some(10))).0,
            PAM_AUTH_ERR
        );
    }

    #[test]
    fn verifications() {
        let h = Fake::default();
        let yes = json!({"ok": true, "phase": "verify", "method": "totp"});
        assert_eq!(
            judge_verify(&h, &answer(yes.clone(), Some(0))).0,
            PAM_SUCCESS
        );
        assert_eq!(judge_verify(&h, &answer(yes, Some(1))).0, PAM_AUTH_ERR);
        let not_verify = json!({"ok": true, "phase": "decision", "decision": "code"});
        assert_eq!(
            judge_verify(&h, &answer(not_verify, Some(0))).0,
            PAM_AUTH_ERR
        );
        let locked = json!({"ok": false, "error": {"kind": "locked", "message": "locked until T"}});
        assert_eq!(judge_verify(&h, &answer(locked, Some(4))).0, PAM_MAXTRIES);
        assert_eq!(h.said.borrow().as_slice(), ["error: locked until T"]);
        for exit in [Some(1), Some(2), Some(3), Some(10), None] {
            let no = json!({"ok": false, "error": {"kind": "rejected", "message": "m"}});
            assert_eq!(judge_verify(&h, &answer(no, exit)).0, PAM_AUTH_ERR);
        }
    }

    #[test]
    fn the_argv_is_fixed_and_values_cannot_become_options() {
        let opts = options::parse(&["account=%u@x.example".into(), "role=ops".into()]).unwrap();
        let argv = tool_args(
            &opts,
            "alice@x.example",
            "sshd",
            "alice",
            Some("--db=/tmp/x"),
            None,
        );
        let argv: Vec<String> = argv.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "--json",
                "--login",
                "--email=alice@x.example",
                "--pam-service=sshd",
                "--pam-user=alice",
                "--pam-rhost=--db=/tmp/x",
                "--role=ops"
            ]
        );
    }
}
