//! How a controller retries a failed sync — the same everywhere, so every controller's error policy is
//! one call.

use std::time::Duration;

use kube::runtime::controller::Action;

/// After losing a write race the cache catches up within moments: retry soon, and quietly.
const AFTER_CONFLICT: Duration = Duration::from_secs(1);
/// After any other failure.
const AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The requeue after `error` syncing the `kind` named `name`; `conflict` says it lost a write race.
pub fn after_error(kind: &str, name: Option<&str>, conflict: bool, error: &dyn std::fmt::Display) -> Action {
    let name = name.unwrap_or("");
    if conflict {
        tracing::debug!(kind, name, %error, "conflict; retrying");
        return Action::requeue(AFTER_CONFLICT);
    }
    tracing::warn!(kind, name, %error, "sync failed; retrying");
    Action::requeue(AFTER_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_retry_sooner() {
        assert_eq!(after_error("Job", Some("pi"), true, &"conflict"), Action::requeue(AFTER_CONFLICT));
        assert_eq!(after_error("Job", None, false, &"boom"), Action::requeue(AFTER_FAILURE));
        assert!(AFTER_CONFLICT < AFTER_FAILURE);
    }
}
