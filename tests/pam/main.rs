//! Logins through pam_mb2fa.so: real PAM (pamtester) and a real sshd, each
//! in a private mount namespace with a pam.d of the test's own
//! (tests/kit/src/pam.rs), against the freshly built module and tools.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pamtester;
mod sshd;
