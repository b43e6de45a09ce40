//! Named tasks under one supervisor: the first task that fails (or panics) cancels the shared
//! shutdown token, so that every other task stops; on shutdown all tasks get the same grace
//! deadline, and the names of those still running at it are logged before they are aborted.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tasks of a process (one service, or every service of the all-in-one), cheap to clone.
#[derive(Clone, Default)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    next_id: AtomicU64,
    /// The tasks still running, by id: their names and how to abort them.
    running: Mutex<BTreeMap<u64, (String, AbortHandle)>>,
    /// The first failure: the task's name and its error.
    failure: Mutex<Option<(String, anyhow::Error)>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("running", &self.running()).finish_non_exhaustive()
    }
}

/// How a supervised run ended.
#[derive(Debug)]
pub struct Stopped {
    /// The first task that failed, and its error.
    pub failure: Option<(String, anyhow::Error)>,
    /// The tasks still running at the grace deadline, which were aborted.
    pub aborted: Vec<String>,
}

impl Stopped {
    /// `Err` naming the task that failed first, else `Ok`.
    pub fn into_result(self) -> anyhow::Result<()> {
        match self.failure {
            Some((name, error)) => Err(error.context(format!("{name} failed"))),
            None => Ok(()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    /// A supervisor whose tasks stop when `shutdown` is cancelled (by a signal, or by the
    /// first failure).
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { inner: Arc::new(Inner { shutdown, ..Inner::default() }) }
    }

    /// The token every task watches: cancelled on a stop signal or the first failure.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Runs `task` as `name`. An error or a panic is the supervisor's failure: it is logged
    /// with the task's name and cancels the shutdown token.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        let task_name = name.clone();
        // Holding the lock while spawning keeps the task from removing itself before it is listed.
        let mut running = lock(&self.inner.running);
        let handle = self.inner.tracker.spawn(async move {
            let outcome = AssertUnwindSafe(task).catch_unwind().await;
            lock(&inner.running).remove(&id);
            let error = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error,
                Err(panic) => anyhow::anyhow!("panicked: {}", panic_message(&panic)),
            };
            tracing::error!(task = %task_name, error = format!("{error:#}"), "Task failed; stopping.");
            lock(&inner.failure).get_or_insert((task_name, error));
            inner.shutdown.cancel();
        });
        running.insert(id, (name, handle.abort_handle()));
    }

    /// The names of the tasks still running, in the order they were spawned.
    pub fn running(&self) -> Vec<String> {
        lock(&self.inner.running).values().map(|(name, _)| name.clone()).collect()
    }

    /// Waits until the shutdown token is cancelled or every task has ended, then gives the
    /// tasks still running `grace` to end; those left are logged by name and aborted.
    pub async fn wait(&self, grace: Duration) -> Stopped {
        let tracker = &self.inner.tracker;
        tracker.close();
        tokio::select! {
            () = self.inner.shutdown.cancelled() => {}
            () = tracker.wait() => {}
        }
        self.inner.shutdown.cancel();
        let mut aborted = Vec::new();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            let stuck: Vec<(String, AbortHandle)> = lock(&self.inner.running).values().cloned().collect();
            aborted = stuck.iter().map(|(name, _)| name.clone()).collect();
            tracing::error!(
                grace_secs = grace.as_secs_f64(),
                tasks = aborted.join(", "),
                "Tasks did not stop within the grace period; aborting them."
            );
            for (_, handle) in &stuck {
                handle.abort();
            }
            tracker.wait().await;
        }
        Stopped { failure: lock(&self.inner.failure).take(), aborted }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_failure_stops_every_task_and_is_named() {
        let supervisor = Supervisor::new(CancellationToken::new());
        let token = supervisor.shutdown().clone();
        supervisor.spawn("core-metadata", async move {
            token.cancelled().await;
            Ok(())
        });
        supervisor.spawn("core-data", async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            anyhow::bail!("Failed to open /nowhere/core-data.db.")
        });
        let stopped = supervisor.wait(Duration::from_secs(10)).await;
        assert!(stopped.aborted.is_empty(), "{stopped:?}");
        let error = format!("{:#}", stopped.into_result().unwrap_err());
        assert_eq!(error, "core-data failed: Failed to open /nowhere/core-data.db.");
        assert!(supervisor.running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_is_a_failure() {
        let supervisor = Supervisor::new(CancellationToken::new());
        supervisor.spawn("device-virtual/autoevents", async { panic!("index out of bounds") });
        let error = supervisor.wait(Duration::from_secs(1)).await.into_result().unwrap_err();
        assert_eq!(format!("{error:#}"), "device-virtual/autoevents failed: panicked: index out of bounds");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_hangs_at_shutdown_is_named_and_aborted_at_the_deadline() {
        let shutdown = CancellationToken::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let token = shutdown.clone();
        supervisor.spawn("core-data", async move {
            token.cancelled().await;
            Ok(())
        });
        supervisor.spawn("device-stuck", std::future::pending());
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn({
            let supervisor = supervisor.clone();
            async move { supervisor.wait(Duration::from_secs(3)).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "returned before the stop signal");
        shutdown.cancel();
        let stopped = waiting.await.unwrap();
        assert_eq!(stopped.aborted, ["device-stuck"]);
        assert!(stopped.failure.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn returns_when_every_task_has_ended() {
        let supervisor = Supervisor::new(CancellationToken::new());
        supervisor.spawn("one-shot", async { Ok(()) });
        let stopped = supervisor.wait(Duration::from_secs(1)).await;
        assert!(stopped.failure.is_none() && stopped.aborted.is_empty());
    }
}
