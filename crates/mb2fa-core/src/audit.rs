//! The audit trail: who did what to which account, and how it ended. Rows are
//! written by the store in the same transaction as the change they describe
//! (so a record exists exactly when the change does) and, once committed,
//! copied to syslog (auth facility, identifier `mb-2fa`) where a syslog
//! socket exists. Records hold no secret and no code: only names, outcomes
//! and counts.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Where syslog listens. `MB2FA_SYSLOG_SOCKET` points the tools at another
/// socket (tests, containers); empty turns syslog off.
const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub at: i64,
    pub tool: String,
    pub action: String,
    pub email: Option<String>,
    pub outcome: String,
    pub actor: String,
    pub detail: String,
}

/// Who runs the tool: `SUDO_USER` when set (the admin behind sudo), else the
/// name of the real user id, else `uid N`.
pub fn current_actor() -> String {
    if let Some(u) = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return sanitize(&u);
    }
    let Some(uid) = real_uid() else {
        return "unknown".to_string();
    };
    user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| sanitize(name))
    })
}

/// Keep names printable and short: they end up in logs.
fn sanitize(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Severity for syslog: failures stand out, routine successes do not.
fn severity(r: &Record) -> u8 {
    match r.outcome.as_str() {
        "break_glass" => 1,                                     // alert
        "rejected" | "locked" | "not_enrolled" | "denied" => 4, // warning
        "accepted" | "activated" => 6,                          // info
        _ => 5,                                                 // notice: changes by admins
    }
}

/// The syslog line, e.g.
/// `mb-2fa-verify: action=verify email=alice@example.com outcome=rejected actor=bob detail="failure 2 of 5"`.
pub fn syslog_text(r: &Record) -> String {
    format!(
        "{}: action={} email={} outcome={} actor={} detail={:?}",
        r.tool,
        r.action,
        r.email.as_deref().unwrap_or("-"),
        r.outcome,
        r.actor,
        r.detail
    )
}

/// Send committed records to syslog. Best effort: a missing or full syslog
/// never fails the command (the database row is the record of truth).
pub fn send_to_syslog(records: &[Record]) {
    if records.is_empty() {
        return;
    }
    let socket = match std::env::var_os("MB2FA_SYSLOG_SOCKET") {
        Some(s) if s.is_empty() => return,
        Some(s) => PathBuf::from(s),
        None => PathBuf::from(DEFAULT_SYSLOG_SOCKET),
    };
    if !socket.exists() {
        return;
    }
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let _ = sock.set_write_timeout(Some(std::time::Duration::from_millis(200)));
    const AUTH: u8 = 4;
    for r in records {
        let msg = format!(
            "<{}>mb-2fa[{}]: {}",
            AUTH * 8 + severity(r),
            std::process::id(),
            syslog_text(r)
        );
        let _ = sock.send_to(msg.as_bytes(), &socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &str) -> Record {
        Record {
            at: 0,
            tool: "mb-2fa-verify".into(),
            action: "verify".into(),
            email: Some("a@example.com".into()),
            outcome: outcome.into(),
            actor: "bob".into(),
            detail: "failure 1 of 5".into(),
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
    fn sanitize_strips_controls() {
        assert_eq!(sanitize("bo\u{1b}[31mb\n"), "bo[31mb");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn actor_is_never_empty() {
        assert!(!current_actor().is_empty());
    }
}
