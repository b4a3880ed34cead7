//! The one error type of the tool set. Every error knows its exit code: the
//! failure half of the spec's exit-code table lives here. Two answers are
//! exit codes by design and are not errors: a login decision
//! (`policy::Decision::exit_code`, 0/6/7) and a failed `mb-2fa-store check`
//! (its report's exit 10).
//!
//! Messages are shown to admins and written into `--json` output: they must
//! never contain a secret or a code. Build them from emails, paths and counts.

use std::fmt;

/// What went wrong, as scripts see it: the exit code and the JSON `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong, replayed or already-used code. Exit 1.
    Rejected,
    /// Bad flag or bad input. Exit 2.
    Usage,
    /// No enrollment for that email (said only after a successful lookup). Exit 3.
    NotEnrolled,
    /// Locked out after repeated failures. Exit 4.
    Locked,
    /// The request conflicts with the current state (e.g. already active). Exit 5.
    Conflict,
    /// Database or key file missing, unreadable, corrupt, or busy too long. Exit 10.
    Storage,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Rejected => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NotEnrolled => 3,
            ErrorKind::Locked => 4,
            ErrorKind::Conflict => 5,
            ErrorKind::Storage => 10,
        }
    }

    /// The stable name used in `--json` output (`error.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Rejected => "rejected",
            ErrorKind::Usage => "usage",
            ErrorKind::NotEnrolled => "not_enrolled",
            ErrorKind::Locked => "locked",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Storage => "storage",
        }
    }
}

/// An error with its kind (and so its exit code) and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// A transient storage failure (a Galera certification conflict, a
    /// deadlock): the whole transaction may be run again from the start.
    retry: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retry: false,
        }
    }

    /// A storage failure after which the whole transaction is run again
    /// (see `Store`): a certification conflict or deadlock. Exit 10 only if
    /// the retries run out.
    pub fn transient(message: impl Into<String>) -> Self {
        Error {
            retry: true,
            ..Self::storage(message)
        }
    }

    /// Whether running the transaction again may succeed.
    pub fn is_transient(&self) -> bool {
        self.retry
    }

    /// The same error with its message prefixed (e.g. by the store's name).
    pub fn prefixed(&self, prefix: &str) -> Self {
        Error {
            kind: self.kind,
            message: format!("{prefix}: {}", self.message),
            retry: self.retry,
        }
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub fn not_enrolled(email: &str) -> Self {
        Self::new(
            ErrorKind::NotEnrolled,
            format!("no 2FA enrollment for {email}"),
        )
    }

    pub fn locked(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Locked, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_spec_table() {
        let table = [
            (ErrorKind::Rejected, 1, "rejected"),
            (ErrorKind::Usage, 2, "usage"),
            (ErrorKind::NotEnrolled, 3, "not_enrolled"),
            (ErrorKind::Locked, 4, "locked"),
            (ErrorKind::Conflict, 5, "conflict"),
            (ErrorKind::Storage, 10, "storage"),
        ];
        for (kind, code, name) in table {
            assert_eq!(kind.exit_code(), code, "{kind:?}");
            assert_eq!(kind.as_str(), name);
        }
    }
}
