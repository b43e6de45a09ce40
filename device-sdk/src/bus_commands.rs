//! Command requests arriving on the message bus (EdgeX 4's core-command → device service).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// Answers command requests on `edgex/device/command/request/{service}/#` until `shutdown`.
pub(crate) async fn run(svc: Arc<Service>, shutdown: CancellationToken) {
    let _ = (svc, shutdown);
    todo!("bus commands")
}
