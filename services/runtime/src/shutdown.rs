//! Turning SIGTERM and SIGINT into a cancellation token every task watches.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or SIGINT (Ctrl-C).
///
/// Must be called inside a tokio runtime; the signal watcher runs as a task on it.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown requested.");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "Failed to watch SIGTERM; watching only SIGINT.");
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "Failed to watch SIGINT; only an explicit cancel stops the service.");
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "Failed to watch Ctrl-C; only an explicit cancel stops the service.");
        std::future::pending::<()>().await;
    }
}
