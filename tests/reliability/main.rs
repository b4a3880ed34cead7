//! Reliability tests of the mb-2fa binaries (issue 6): races between real
//! processes, crashes (kill -9 at random moments), broken storage, and
//! hostile input. Each test runs the shipped tools against its own database
//! in a temporary directory, like the black-box suite, and prints the
//! figures it measured (`--nocapture` shows them; docs/RELIABILITY.md lists
//! them with the commands that reproduce them).
//!
//! Counts: `MB2FA_RELIABILITY_ROUNDS` (race rounds), `MB2FA_CRASH_TRIALS`
//! (kill trials per writing tool), `MB2FA_ARGV_TRIALS` (random argument
//! vectors per tool); `MB2FA_RELIABILITY_SEED` replays a run's random
//! choices.

// Helpers outside #[test] functions panic on purpose: a failed check is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crashes;
mod hostile;
mod races;
mod rekey;
mod storage;
mod support;
