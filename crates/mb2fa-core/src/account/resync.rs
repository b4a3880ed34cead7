//! Re-synchronising a phone whose clock drifted: two consecutive codes.

use super::{Attempt, Ctx};
use crate::audit::{Action, Outcome};
use crate::email::Email;
use crate::error::Result;
use crate::model::{Premise, State, Success};
use crate::skew;
use crate::store::{Store, Verdict};

/// The outcome of a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resynced {
    pub drift_steps: i64,
    /// The enrollment's TOTP period, in seconds (what a step is).
    pub period: u32,
    pub activated: bool,
}

/// Re-synchronise an account's drift from two consecutive codes found within
/// ±`skew::MAX_DRIFT` steps (like FreeIPA's token sync). Both codes are used
/// up; a pending enrollment is activated (the user proved the phone works).
/// A failure counts towards the lockout like a wrong code.
pub fn resync(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    first: &str,
    second: &str,
) -> Result<Resynced> {
    let now = ctx.clock.now()?;
    let attempt = Attempt {
        ctx,
        now,
        action: Action::Resync,
        email,
    };
    store.decide(|tx| {
        let Some(account) = tx.account_for_update(email.as_str())? else {
            return attempt.not_enrolled(tx, "");
        };
        if account.lock().is_locked(now) {
            return attempt.locked(tx, account.lock(), "resync");
        }
        let find = |floor| {
            skew::find_consecutive(
                &account.secret,
                &account.params,
                first,
                second,
                now,
                skew::MAX_DRIFT,
                floor,
            )
        };
        let Some(step) = find(account.last_step) else {
            let stale = account.last_step.is_some() && find(None).is_some();
            let what = if stale {
                "the two codes are not newer than the last accepted code (a code is never accepted twice, nor an older one); resync with the phone's next two codes once its clock is fixed or has caught up".to_string()
            } else {
                format!(
                    "the two codes are not consecutive codes of this account within ±{}",
                    skew::describe_seconds(skew::MAX_DRIFT * i64::from(account.params.period))
                )
            };
            return attempt.wrong_code(tx, account.id, &what);
        };
        let drift = step - account.params.step_at(now);
        let activated = account.state == State::Pending;
        tx.record_success(
            account.id,
            &Success::totp(now, step, drift, vec![drift; skew::HISTORY], activated),
            Premise::totp(&account),
        )?;
        tx.append_audit(attempt.record(
            Outcome::Ok,
            format!(
                "drift {} -> {drift} steps{}",
                account.drift_steps,
                if activated { "; activated" } else { "" }
            ),
        ))?;
        Ok(Verdict::Done(Resynced {
            drift_steps: drift,
            period: account.params.period,
            activated,
        }))
    })
}
