//! Auto events: timed reads of a device's sources, published as events (interval and onChange).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// Runs the auto events of every device, re-synced on cache changes, until `shutdown`.
pub(crate) async fn run(svc: Arc<Service>, shutdown: CancellationToken) {
    let _ = (svc, shutdown);
    todo!("auto events")
}
