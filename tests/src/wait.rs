//! Waiting for the cluster to reach a state, with a deadline and a useful message when it does not.

use std::future::Future;
use std::time::Duration;

use anyhow::bail;

/// Polls `check` every half second until it returns `Some`, or fails after `timeout` with the last
/// observation, so a failing test says what it saw rather than just "timed out".
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Result<T, String>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(observed)) => observed,
            Err(e) => format!("error: {e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last observed: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
