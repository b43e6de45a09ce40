//! Waiting for a dependency (a store, a broker, a subscription) that is not up yet: one
//! backoff policy, cancelled by the shutdown token.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use oxedge_bus::{Bus, SubscribeOptions, Subscription};
use tokio_util::sync::CancellationToken;

/// Exponential backoff between retries: 100 ms, doubling, up to 5 s (or the limits given).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    /// Delays from `first`, doubling, up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Self { first, next: first, max }
    }

    /// The delay the next [`wait`](Self::wait) sleeps.
    pub fn next_delay(&self) -> Duration {
        self.next
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps the current delay and doubles the next; `false` if `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// Calls `attempt` until it succeeds, logging each failure as `what` and waiting with
/// [`Backoff`] between attempts; `None` if `shutdown` is cancelled first (during an attempt
/// or a wait).
pub async fn retry_until_ok<T, E, F, Fut>(what: &str, shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut backoff = Backoff::default();
    loop {
        let error = tokio::select! {
            () = shutdown.cancelled() => return None,
            result = attempt() => match result {
                Ok(value) => return Some(value),
                Err(error) => error,
            },
        };
        let delay = backoff.next_delay();
        tracing::warn!(error = format!("{error:#}"), ?delay, "{what} not reachable yet; retrying.");
        if !backoff.wait(shutdown).await {
            return None;
        }
    }
}

/// Subscribes to `filters` on `bus`, retrying with [`Backoff`] while the bus refuses (a
/// broker that is away); `None` on shutdown. `what` names the subscription in the log.
pub async fn subscribe_retrying(
    bus: &dyn Bus,
    filters: &[String],
    options: SubscribeOptions,
    what: &str,
    shutdown: &CancellationToken,
) -> Option<Subscription> {
    let subscription = retry_until_ok(what, shutdown, || bus.subscribe(filters, options.clone())).await?;
    tracing::info!(filters = filters.join(" "), bus = %bus.describe(), "Subscribed to {what}.");
    Some(subscription)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use oxedge_bus::InProcessBus;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_attempt_succeeds_and_stops_on_shutdown() {
        let shutdown = CancellationToken::new();
        let mut calls = 0;
        let started = tokio::time::Instant::now();
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
        // 100 + 200 + 400 ms between the four attempts.
        assert_eq!(started.elapsed(), Duration::from_millis(700));

        shutdown.cancel();
        let never = retry_until_ok("test", &shutdown, || async { Err::<(), _>("down") }).await;
        assert_eq!(never, None);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_its_cap_and_resets() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let mut delays = Vec::new();
        for _ in 0..5 {
            delays.push(backoff.next_delay().as_secs());
            assert!(backoff.wait(&shutdown).await);
        }
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
        shutdown.cancel();
        assert!(!backoff.wait(&shutdown).await, "a cancelled wait returns false at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cancelled_by_shutdown() {
        let shutdown = CancellationToken::new();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cancel.cancel();
        });
        let hung = retry_until_ok("test", &shutdown, std::future::pending::<Result<(), &str>>).await;
        assert_eq!(hung, None);
    }

    #[tokio::test]
    async fn subscribes_on_a_bus_that_accepts() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let filters = ["edgex/test/#".to_owned()];
        let shutdown = CancellationToken::new();
        let sub = subscribe_retrying(&*bus, &filters, SubscribeOptions::default(), "test events", &shutdown).await;
        assert!(sub.is_some());
    }
}
