//! Restart policies: whether an exited container is started again and after how long,
//! by Docker's rules — `always`, `unless-stopped` (not after a manual stop), `on-failure[:N]`
//! (non-zero exits, at most N restarts); a delay that starts at 100 ms and doubles up to a
//! minute, back to 100 ms once the container stayed up for 10 s. Never after an explicit
//! stop or kill (`exit_on_next`).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::types::RestartPolicy;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// In-memory restart bookkeeping of one container.
#[derive(Debug, Default)]
pub struct RestartState {
    delay: Duration,
    /// Set by stop and kill: the next exit is final.
    pub exit_on_next: bool,
    /// Bumped by every explicit lifecycle operation; a scheduled restart whose generation is
    /// stale is dropped.
    pub generation: u64,
}

/// Rejects a policy Docker rejects.
pub fn validate(policy: &RestartPolicy, auto_remove: bool) -> Result<()> {
    match policy.name.as_str() {
        "" | "no" => {}
        "always" | "unless-stopped" if policy.maximum_retry_count != 0 => {
            return Err(Error::InvalidParameter(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            ))
        }
        "always" | "unless-stopped" => {}
        "on-failure" if policy.maximum_retry_count < 0 => {
            return Err(Error::InvalidParameter(
                "invalid restart policy: maximum retry count must be a positive integer".into(),
            ))
        }
        "on-failure" => {}
        other => {
            return Err(Error::InvalidParameter(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if auto_remove && !matches!(policy.name.as_str(), "" | "no") {
        return Err(Error::InvalidParameter(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    Ok(())
}

impl RestartState {
    /// After an exit: the delay before restarting, or None to leave it exited. `ran` is how
    /// long it was up; `restarts` the restarts so far.
    pub fn decide(
        &mut self,
        policy: &RestartPolicy,
        exit_code: i64,
        manually_stopped: bool,
        restarts: i64,
        ran: Duration,
    ) -> Option<Duration> {
        if std::mem::take(&mut self.exit_on_next) {
            return None;
        }
        let restart = match policy.name.as_str() {
            "always" => true,
            "unless-stopped" => !manually_stopped,
            "on-failure" => {
                let max = policy.maximum_retry_count;
                exit_code != 0 && (max == 0 || restarts < max)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        if ran >= RESET_AFTER || self.delay.is_zero() {
            self.delay = FIRST_DELAY;
        } else {
            self.delay = (self.delay * 2).min(MAX_DELAY);
        }
        Some(self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut s = RestartState::default();
        let p = policy("always", 0);
        let short = Duration::from_secs(1);
        let mut delays = Vec::new();
        for _ in 0..12 {
            delays.push(s.decide(&p, 0, false, 0, short).unwrap());
        }
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[11], Duration::from_secs(60));
        let again = s.decide(&p, 0, false, 0, Duration::from_secs(10)).unwrap();
        assert_eq!(again, Duration::from_millis(100));
    }

    #[test]
    fn policies() {
        let mut s = RestartState::default();
        let d = Duration::ZERO;
        assert!(s.decide(&policy("", 0), 1, false, 0, d).is_none());
        assert!(s.decide(&policy("no", 0), 1, false, 0, d).is_none());
        assert!(s.decide(&policy("on-failure", 0), 0, false, 0, d).is_none());
        assert!(s
            .decide(&policy("on-failure", 0), 1, false, 99, d)
            .is_some());
        assert!(s.decide(&policy("on-failure", 2), 1, false, 1, d).is_some());
        assert!(s.decide(&policy("on-failure", 2), 1, false, 2, d).is_none());
        assert!(s
            .decide(&policy("unless-stopped", 0), 0, true, 0, d)
            .is_none());
        assert!(s
            .decide(&policy("unless-stopped", 0), 0, false, 0, d)
            .is_some());
        s.exit_on_next = true;
        assert!(s.decide(&policy("always", 0), 0, false, 0, d).is_none());
        assert!(s.decide(&policy("always", 0), 0, false, 0, d).is_some());
    }

    #[test]
    fn validation() {
        assert!(validate(&policy("always", 0), false).is_ok());
        assert!(validate(&policy("on-failure", 3), false).is_ok());
        assert!(validate(&policy("always", 3), false).is_err());
        assert!(validate(&policy("sometimes", 0), false).is_err());
        assert!(validate(&policy("always", 0), true).is_err());
        assert!(validate(&policy("no", 0), true).is_ok());
    }
}
