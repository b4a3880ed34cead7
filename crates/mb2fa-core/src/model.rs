//! The domain's nouns: an enrollment and its state, a lock, an exemption,
//! the actions and outcomes the audit trail records. Independent of where
//! they are stored: a backend encodes and decodes them (`store`), the rules
//! (`account`, `policy`, `throttle`) decide with them.

use crate::secret::Secret;
use crate::totp::TotpParams;

/// Where an enrollment stands: pending until its first TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Active,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "active" => Some(State::Active),
            _ => None,
        }
    }
}

/// An account with its (opened) secret, for verification.
#[derive(Debug)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub state: State,
    pub secret: Secret,
    pub params: TotpParams,
    pub issuer: String,
    pub created_at: i64,
    pub last_step: Option<i64>,
    pub drift_steps: i64,
    /// Offsets of the last accepted codes, oldest first (see `skew`).
    pub recent_offsets: Vec<i64>,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

impl Account {
    pub fn lock(&self) -> Lock {
        Lock {
            failed_attempts: self.failed_attempts,
            locked_until: self.locked_until,
        }
    }
}

/// What a decision about an account was judged on. A backend writes the
/// decision only if the account's row still holds these values, in the same
/// statement (a compare-and-set whose affected-row count is the verdict);
/// if it does not, the decision was made on a row somebody else changed
/// meanwhile (on Galera: another node's write that certification or a lock
/// did not stop), and the whole transaction runs again (`Tx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Premise {
    pub lock: Lock,
    /// The replay floor the code was judged against; `None` when none was
    /// (a backup code, which does not move it).
    pub last_step: Option<Option<i64>>,
}

impl Premise {
    /// A TOTP code judged on `account`: its lock and its replay floor.
    pub fn totp(account: &Account) -> Premise {
        Premise {
            lock: account.lock(),
            last_step: Some(account.last_step),
        }
    }

    /// A decision judged on the lock alone.
    pub fn lock(lock: Lock) -> Premise {
        Premise {
            lock,
            last_step: None,
        }
    }
}

/// An account's lockout state: consecutive failures and the end of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

impl Lock {
    /// No failures, no lock: what a success or `mb-2fa-unlock` leaves.
    pub const CLEAR: Lock = Lock {
        failed_attempts: 0,
        locked_until: None,
    };

    /// Is the account locked at `now`? A lock that has run out is no lock.
    pub fn is_locked(&self, now: i64) -> bool {
        crate::throttle::is_locked(self.locked_until, now)
    }

    /// The end of the lock if it is still in force at `now` (what the
    /// tools show: an expired lock is shown as none).
    pub fn in_force(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|_| self.is_locked(now))
    }
}

/// An account as `mb-2fa-list` shows it: no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub email: String,
    pub state: State,
    pub issuer: String,
    /// The enrollment's TOTP period, in seconds.
    pub period: u32,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub backup_codes_left: u32,
    pub drift_steps: i64,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

impl AccountSummary {
    /// The summary as shown at `now`: a lock that has run out is no lock.
    pub fn as_of(mut self, now: i64) -> AccountSummary {
        self.locked_until = Lock {
            failed_attempts: self.failed_attempts,
            locked_until: self.locked_until,
        }
        .in_force(now);
        self
    }
}

/// A new enrollment to store (always pending).
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub secret: &'a Secret,
    pub params: TotpParams,
    pub issuer: &'a str,
    pub created_at: i64,
}

/// Why an account needs no code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExemptionKind {
    /// A machine account (a relay, a monitor).
    Service,
    /// The emergency account: allowed, and every use raises an alert.
    BreakGlass,
}

impl ExemptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExemptionKind::Service => "service",
            ExemptionKind::BreakGlass => "break-glass",
        }
    }

    pub fn parse(s: &str) -> Option<ExemptionKind> {
        match s {
            "service" => Some(ExemptionKind::Service),
            "break-glass" => Some(ExemptionKind::BreakGlass),
            _ => None,
        }
    }
}

impl std::fmt::Display for ExemptionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exemption from the 2FA requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub email: String,
    pub kind: ExemptionKind,
    pub reason: String,
    pub created_at: i64,
    pub created_by: String,
    pub used_at: Option<i64>,
    pub sealed_at: Option<i64>,
}

/// Which enrollment an account row holds. Row ids are reused (a
/// re-enrollment deletes and inserts, and may get the same id), so an
/// operation that decides in two transactions binds to `generation` too: a
/// digest of the sealed secret's random nonce, new with every enrollment
/// and kept when `mb-2fa-store rekey` re-seals it under a new key (a
/// backup code checked across a rekey's commit is still the same
/// enrollment's; see `crypto::reseal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentRef {
    pub id: i64,
    pub state: State,
    pub generation: [u8; 32],
}

impl EnrollmentRef {
    /// The same enrollment (its state may have moved on).
    pub fn same_as(&self, other: &EnrollmentRef) -> bool {
        self.id == other.id && self.generation == other.generation
    }
}

/// One stored backup code: its argon2id hash, never the code.
#[derive(Debug, Clone)]
pub struct StoredBackupCode {
    pub id: i64,
    pub hash: String,
    pub used: bool,
}

/// What an accepted code changes on its account, decided by the rules and
/// written as it is by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// When the code was used: the account's last use. `None` (an import:
    /// no code was used here) leaves the last use as it is.
    pub used_at: Option<i64>,
    /// A TOTP code's progress; `None` for a backup code.
    pub totp: Option<TotpProgress>,
    /// The enrollment's state afterwards.
    pub state: State,
    /// Set when this success activates a pending enrollment; `None` leaves
    /// the activation time as it is.
    pub activated_at: Option<i64>,
    /// The lock state afterwards.
    pub lock: Lock,
}

impl Success {
    /// An accepted TOTP code at `at` for `step`, with the drift learned
    /// from it: the enrollment is active afterwards (activated now if it was
    /// pending) and its failures are cleared.
    pub fn totp(
        at: i64,
        step: i64,
        drift_steps: i64,
        recent_offsets: Vec<i64>,
        activates: bool,
    ) -> Success {
        Success {
            used_at: Some(at),
            totp: Some(TotpProgress {
                last_step: step,
                drift_steps,
                recent_offsets,
            }),
            state: State::Active,
            activated_at: activates.then_some(at),
            lock: Lock::CLEAR,
        }
    }

    /// A spent backup code at `at`: the state stays, the failures are cleared.
    pub fn backup_code(at: i64, state: State) -> Success {
        Success {
            used_at: Some(at),
            totp: None,
            state,
            activated_at: None,
            lock: Lock::CLEAR,
        }
    }
}

/// The replay floor and the learned drift after an accepted TOTP code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpProgress {
    pub last_step: i64,
    pub drift_steps: i64,
    pub recent_offsets: Vec<i64>,
}

/// What was done, in an audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Enable,
    Verify,
    Resync,
    Diagnose,
    Disable,
    BackupCodes,
    Unlock,
    PolicySet,
    Exempt,
    Unexempt,
    Seal,
    Check,
    SealPlaintext,
    Alert,
    /// `mb-2fa-store copy`, recorded in the target.
    Copy,
    /// `mb-2fa-import`: an enrollment taken over from another 2FA tool.
    Import,
    /// `mb-2fa-store rekey`: every secret re-sealed with a new key.
    Rekey,
    /// `mb-2fa-store rekey --finish`: the old key no longer recorded.
    RekeyFinish,
    /// A stored value this build does not know (a newer tool's, or a
    /// planted one): shown as it is, escaped.
    Other(String),
}

impl Action {
    pub fn as_str(&self) -> &str {
        match self {
            Action::Enable => "enable",
            Action::Verify => "verify",
            Action::Resync => "resync",
            Action::Diagnose => "diagnose",
            Action::Disable => "disable",
            Action::BackupCodes => "backup_codes",
            Action::Unlock => "unlock",
            Action::PolicySet => "policy_set",
            Action::Exempt => "exempt",
            Action::Unexempt => "unexempt",
            Action::Seal => "seal",
            Action::Check => "check",
            Action::SealPlaintext => "seal-plaintext",
            Action::Alert => "alert",
            Action::Copy => "copy",
            Action::Import => "import",
            Action::Rekey => "rekey",
            Action::RekeyFinish => "rekey-finish",
            Action::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Action {
        const KNOWN: [Action; 18] = [
            Action::Enable,
            Action::Verify,
            Action::Resync,
            Action::Diagnose,
            Action::Disable,
            Action::BackupCodes,
            Action::Unlock,
            Action::PolicySet,
            Action::Exempt,
            Action::Unexempt,
            Action::Seal,
            Action::Check,
            Action::SealPlaintext,
            Action::Alert,
            Action::Copy,
            Action::Import,
            Action::Rekey,
            Action::RekeyFinish,
        ];
        KNOWN
            .into_iter()
            .find(|a| a.as_str() == s)
            .unwrap_or_else(|| Action::Other(s.to_string()))
    }
}

/// How it ended, in an audit record; it sets the syslog severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An admin change that was made.
    Ok,
    Accepted,
    Activated,
    Rejected,
    Locked,
    NotEnrolled,
    Conflict,
    Denied,
    Setup,
    BreakGlass,
    Undelivered,
    /// A login let in without a code by the policy (not required, or a
    /// service exemption); recorded for logins through PAM.
    Allowed,
    /// See [`Action::Other`].
    Other(String),
}

impl Outcome {
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Accepted => "accepted",
            Outcome::Activated => "activated",
            Outcome::Rejected => "rejected",
            Outcome::Locked => "locked",
            Outcome::NotEnrolled => "not_enrolled",
            Outcome::Conflict => "conflict",
            Outcome::Denied => "denied",
            Outcome::Setup => "setup",
            Outcome::BreakGlass => "break_glass",
            Outcome::Undelivered => "undelivered",
            Outcome::Allowed => "allowed",
            Outcome::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Outcome {
        const KNOWN: [Outcome; 12] = [
            Outcome::Ok,
            Outcome::Accepted,
            Outcome::Activated,
            Outcome::Rejected,
            Outcome::Locked,
            Outcome::NotEnrolled,
            Outcome::Conflict,
            Outcome::Denied,
            Outcome::Setup,
            Outcome::BreakGlass,
            Outcome::Undelivered,
            Outcome::Allowed,
        ];
        KNOWN
            .into_iter()
            .find(|o| o.as_str() == s)
            .unwrap_or_else(|| Outcome::Other(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_kept() {
        for s in ["enable", "policy_set", "seal-plaintext", "alert"] {
            assert_eq!(Action::parse(s).as_str(), s);
            assert!(!matches!(Action::parse(s), Action::Other(_)), "{s}");
        }
        for s in ["ok", "not_enrolled", "break_glass", "undelivered"] {
            assert_eq!(Outcome::parse(s).as_str(), s);
            assert!(!matches!(Outcome::parse(s), Outcome::Other(_)), "{s}");
        }
        assert_eq!(Action::parse("\u{1b}x"), Action::Other("\u{1b}x".into()));
        assert_eq!(Outcome::parse("OK"), Outcome::Other("OK".into()));
        for k in [ExemptionKind::Service, ExemptionKind::BreakGlass] {
            assert_eq!(ExemptionKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ExemptionKind::parse("Service"), None);
    }

    #[test]
    fn an_expired_lock_is_no_lock() {
        let lock = Lock {
            failed_attempts: 5,
            locked_until: Some(100),
        };
        assert_eq!(lock.in_force(99), Some(100));
        assert_eq!(lock.in_force(100), None);
        assert!(!Lock::CLEAR.is_locked(0));
    }
}
