//! The audit trail: who did what to which account, and how it ended. Rows are
//! written by the store in the same transaction as the change they describe
//! (so a record exists exactly when the change does) and, once committed,
//! copied to syslog (auth facility, identifier `mb-2fa`) where a syslog
//! socket exists. Records hold no secret and no code: only names, outcomes
//! and counts.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

pub use crate::model::{Action, Outcome};

/// Where syslog listens. `MB2FA_SYSLOG_SOCKET` points the tools at another
/// socket (tests, containers); empty turns syslog off.
const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// One audit record. Action and outcome are typed: the syslog severity is
/// chosen by the outcome, so a misspelt one cannot silently change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub at: i64,
    pub tool: String,
    pub action: Action,
    pub email: Option<String>,
    pub outcome: Outcome,
    pub actor: String,
    pub detail: String,
    /// The host the tool ran on: on a cluster, which node (see [`node_name`]).
    /// Empty in records written before schema 5.
    pub node: String,
    /// Through what the login came, when a PAM module ran the tool (see
    /// [`Via`]); empty otherwise and in records written before schema 7.
    pub via: String,
}

/// Where a login came through, as the PAM module says: the PAM service
/// (`sshd`, `sudo`), the PAM user, the remote host and the terminal. The
/// values come from sshd or sudo (a remote host can be a name from reverse
/// DNS, which whoever runs that DNS chooses), so they are recorded, never
/// trusted, and cleaned: a character that is not printable ASCII, or is a
/// space, `=`, `"` or `\\`, becomes `?`, and each value is cut at
/// [`Via::MAX_ITEM`] characters. Rendered as
/// `pam service=sshd user=alice rhost=203.0.113.7 tty=ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub service: String,
    pub user: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
}

impl Via {
    /// Longest value kept of each item.
    pub const MAX_ITEM: usize = 255;

    pub fn new(service: &str, user: &str, rhost: Option<&str>, tty: Option<&str>) -> Via {
        Via {
            service: clean_item(service),
            user: clean_item(user),
            rhost: rhost.filter(|h| !h.is_empty()).map(clean_item),
            tty: tty.filter(|t| !t.is_empty()).map(clean_item),
        }
    }

    /// The audit trail's form: `pam service=S user=U[ rhost=H][ tty=T]`.
    pub fn render(&self) -> String {
        let mut out = format!("pam service={} user={}", self.service, self.user);
        if let Some(h) = &self.rhost {
            out.push_str(&format!(" rhost={h}"));
        }
        if let Some(t) = &self.tty {
            out.push_str(&format!(" tty={t}"));
        }
        out
    }
}

fn clean_item(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .take(Via::MAX_ITEM)
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '=' | '"' | '\\') {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.is_empty() {
        "?".to_string()
    } else {
        clean
    }
}

/// This machine's host name, recorded in every audit row so that a
/// cluster's trail says which node a login came through. `?` if it cannot
/// be read; control characters and spaces are replaced.
pub fn node_name() -> &'static str {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        let raw = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let clean: String = raw
            .chars()
            .take(255)
            .map(|c| {
                if c.is_control() || c.is_whitespace() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if clean.is_empty() {
            "?".to_string()
        } else {
            clean
        }
    })
}

/// Who runs the tool, for the audit trail: the admin behind sudo, else the
/// real user (looked up through NSS, so LDAP and SSSD users have names),
/// else `uid N`.
///
/// `SUDO_USER` is taken only when it is a plain user name (no space, `=`,
/// quote or control, which would forge `key=value` fields in syslog) and,
/// when `SUDO_UID` is set (sudo sets both), only when NSS maps that name to
/// that uid. Anything else is recorded as `uid N (invalid SUDO_USER)`, with
/// the real uid.
pub fn current_actor() -> String {
    let uid = nix::unistd::getuid().as_raw();
    if let Some(sudo_user) = std::env::var_os("SUDO_USER").filter(|u| !u.is_empty()) {
        let name = sudo_user.to_str().filter(|n| is_plain_user_name(n));
        let uid_matches = |name: &str| match std::env::var_os("SUDO_UID") {
            None => true,
            Some(v) => {
                let claimed = v.to_str().and_then(|v| v.parse::<u32>().ok());
                let known = nix::unistd::User::from_name(name).ok().flatten();
                matches!((claimed, known), (Some(c), Some(u)) if u.uid.as_raw() == c)
            }
        };
        return match name {
            Some(n) if uid_matches(n) => n.to_string(),
            _ => format!("uid {uid} (invalid SUDO_USER)"),
        };
    }
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) if is_plain_user_name(&u.name) => u.name,
        _ => format!("uid {uid}"),
    }
}

/// A user name as useradd, LDAP and SSSD make them: letters, digits, `.`,
/// `_`, `-`, `@` (SSSD's `user@domain`), and a trailing `$` (machine
/// accounts); not starting with `-`; at most 64 bytes.
pub fn is_plain_user_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    !body.is_empty()
        && name.len() <= 64
        && !body.starts_with('-')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Severity for syslog: failures stand out, routine successes do not.
fn severity(r: &Record) -> u8 {
    match r.outcome {
        Outcome::BreakGlass => 1, // alert
        Outcome::Rejected | Outcome::Locked | Outcome::NotEnrolled | Outcome::Denied => 4, // warning
        Outcome::Accepted | Outcome::Activated | Outcome::Allowed => 6,                    // info
        // notice: changes by admins, and what this build does not know
        Outcome::Ok
        | Outcome::Conflict
        | Outcome::Setup
        | Outcome::Undelivered
        | Outcome::Other(_) => 5,
    }
}

/// The syslog line, e.g.
/// `mb-2fa-verify: action=verify email=alice@example.com outcome=rejected actor=bob detail="failure 2 of 5"`.
/// A value is bare only when it is plain ASCII without space, `=`, `"` or
/// `\\`; anything else is quoted and escaped, so no stored value (an email a
/// database writer planted, an actor) can forge another `key=value` field
/// or start a new line.
pub fn syslog_text(r: &Record) -> String {
    let mut line = format!(
        "{}: action={} email={} outcome={} actor={} detail={}",
        field(&r.tool),
        field(r.action.as_str()),
        field(r.email.as_deref().unwrap_or("-")),
        field(r.outcome.as_str()),
        field(&r.actor),
        quoted(&r.detail)
    );
    if !r.via.is_empty() {
        line.push_str(&format!(" via={}", quoted(&r.via)));
    }
    line
}

fn field(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '=' | '"' | '\\'));
    if plain { v.to_string() } else { quoted(v) }
}

/// `"..."` with `\\`, `"` and every non-printable or non-ASCII character
/// escaped (`\u{1b}`): one line, one field.
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c == ' ' || c.is_ascii_graphic() => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Why a record did not reach syslog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub record: Record,
    pub why: String,
}

/// Send committed records to syslog. A missing or full syslog never fails
/// the command (the database row is the record of truth), but the
/// break-glass alerts that could not be sent are returned: the caller says
/// so on stderr and in the audit trail, so an alert is never silently
/// dropped (not even by `MB2FA_SYSLOG_SOCKET=`).
pub fn send_to_syslog(records: &[Record]) -> Vec<Undelivered> {
    let alerts = |why: &str| -> Vec<Undelivered> {
        records
            .iter()
            .filter(|r| severity(r) == 1)
            .map(|r| Undelivered {
                record: r.clone(),
                why: why.to_string(),
            })
            .collect()
    };
    if records.is_empty() {
        return Vec::new();
    }
    let socket = match std::env::var_os("MB2FA_SYSLOG_SOCKET") {
        Some(s) if s.is_empty() => {
            return alerts("syslog is turned off (MB2FA_SYSLOG_SOCKET is empty)");
        }
        Some(s) => PathBuf::from(s),
        None => PathBuf::from(DEFAULT_SYSLOG_SOCKET),
    };
    if !socket.exists() {
        return alerts(&format!("no syslog socket at {}", socket.display()));
    }
    let sock = match UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => return alerts(&format!("cannot make a socket: {e}")),
    };
    let _ = sock.set_write_timeout(Some(std::time::Duration::from_millis(200)));
    const AUTH: u8 = 4;
    let mut lost = Vec::new();
    for r in records {
        let msg = format!(
            "<{}>mb-2fa[{}]: {}",
            AUTH * 8 + severity(r),
            std::process::id(),
            syslog_text(r)
        );
        if let Err(e) = sock.send_to(msg.as_bytes(), &socket)
            && severity(r) == 1
        {
            lost.push(Undelivered {
                record: r.clone(),
                why: format!("sending to {} failed: {e}", socket.display()),
            });
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &str) -> Record {
        Record {
            at: 0,
            tool: "mb-2fa-verify".into(),
            action: Action::Verify,
            email: Some("a@example.com".into()),
            outcome: Outcome::parse(outcome),
            actor: "bob".into(),
            detail: "failure 1 of 5".into(),
            node: "node-a".into(),
            via: String::new(),
        }
    }

    #[test]
    fn syslog_line_and_severity() {
        let r = record("rejected");
        assert_eq!(
            syslog_text(&r),
            "mb-2fa-verify: action=verify email=a@example.com outcome=rejected actor=bob detail=\"failure 1 of 5\""
        );
        assert_eq!(severity(&r), 4);
        assert_eq!(severity(&record("accepted")), 6);
        assert_eq!(severity(&record("ok")), 5);
        assert_eq!(severity(&record("break_glass")), 1);
    }

    #[test]
    fn syslog_fields_cannot_be_forged() {
        let mut r = record("rejected");
        r.actor = "eve outcome=accepted".into();
        r.email = Some("x\ny@e".into());
        let line = syslog_text(&r);
        assert!(line.contains("actor=\"eve outcome=accepted\""), "{line}");
        assert!(line.contains("email=\"x\\u{a}y@e\""), "{line}");
        assert!(!line.contains('\n'));
        assert!(is_plain_user_name("alice") && is_plain_user_name("bob@corp.example"));
        assert!(
            !is_plain_user_name("a b") && !is_plain_user_name("a=b") && !is_plain_user_name("-x")
        );
    }

    #[test]
    fn actor_is_never_empty() {
        assert!(!current_actor().is_empty());
    }
}
