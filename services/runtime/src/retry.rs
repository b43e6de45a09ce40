//! Waiting for a dependency (a store, a broker) that is not up yet.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Calls `attempt` until it succeeds, logging each failure as `what` and sleeping 100 ms,
/// 200 ms, … up to 5 s between attempts; `None` if `shutdown` is cancelled first.
pub async fn retry_until_ok<T, E, F, Fut>(what: &str, shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut delay = Duration::from_millis(100);
    loop {
        let error = tokio::select! {
            _ = shutdown.cancelled() => return None,
            result = attempt() => match result {
                Ok(value) => return Some(value),
                Err(error) => error,
            },
        };
        tracing::warn!(error = format!("{error:#}"), ?delay, "{what} not reachable yet; retrying.");
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_until_the_attempt_succeeds_and_stops_on_shutdown() {
        let shutdown = CancellationToken::new();
        let mut calls = 0;
        let value = retry_until_ok("test", &shutdown, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 4 {
                    Err("down")
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(value, Some(4));

        shutdown.cancel();
        let never = retry_until_ok("test", &shutdown, || async { Err::<(), _>("down") }).await;
        assert_eq!(never, None);
    }
}
