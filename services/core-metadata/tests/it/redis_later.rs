//! core-metadata started before its Redis server (containers start in any order) waits for
//! it with backoff instead of exiting, answering as not ready meanwhile, and serves once
//! Redis is up.

use std::sync::Arc;
use std::time::Duration;

use oxedge_bus::InProcessBus;
use oxedge_core_metadata::MetadataConfig;
use oxedge_runtime::config::Backend;
use oxedge_runtime::ServiceContext;
use oxedge_testkit::{free_port, http::Api};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn core_metadata_waits_for_a_redis_that_starts_later() {
    let Some(mut redis) = oxedge_testkit::redis::private_redis().await else { return };
    redis.stop().await;
    let mut cfg = MetadataConfig::default();
    cfg.service.port = free_port();
    cfg.database.backend = Backend::Redis;
    cfg.database.redis_url = format!("redis://127.0.0.1:{}", redis.port());
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", cfg.service.port));
    let listener = cfg.service.bind().unwrap();
    let shutdown = CancellationToken::new();
    let ctx = ServiceContext::standalone("core-metadata", Arc::new(InProcessBus::new()), shutdown.clone());
    let service = tokio::spawn(oxedge_core_metadata::run(ctx, cfg, listener));

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!service.is_finished(), "core-metadata gave up while Redis was away: {:?}", service.await);
    api.assert_starting("Redis", "/device/all").await;

    redis.start().await.unwrap();
    assert!(api.wait_healthy(Duration::from_secs(20)).await, "core-metadata not ready 20 s after Redis started");
    assert_eq!(api.get("/device/all").await.status, 200);

    shutdown.cancel();
    service.await.unwrap().unwrap();
}
