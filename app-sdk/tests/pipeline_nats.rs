//! The message bus trigger on NATS JetStream: a message is acknowledged only once its
//! export confirmed, so one not confirmed comes again to the next run of the service.

mod pipeline_support;

use std::sync::Arc;

use oxedge_app_sdk::AppServiceConfig;
use oxedge_bus::nats::JetStreamSettings;
use oxedge_bus::{Bus, NatsBus, NatsSettings};
use pipeline_support::*;

async fn nats_bus(url: &str, name: &str) -> Arc<dyn Bus> {
    let mut settings = NatsSettings::new(url, name);
    // Short, so that an unacknowledged message comes back within the test.
    settings.jetstream = Some(JetStreamSettings { ack_wait_secs: 1, ..JetStreamSettings::default() });
    Arc::new(NatsBus::connect(settings).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_after_its_export_confirmed() {
    let Some(server) = oxedge_testkit::nats::test_nats().await else { return };
    let publisher = nats_bus(&server.url, &unique("publisher")).await;
    let url = server.url.clone();
    let connect = move |name: String| {
        let url = url.clone();
        async move { nats_bus(&url, &name).await }
    };
    acknowledged_only_after_confirmation(publisher, connect, AppServiceConfig::default()).await;
}
