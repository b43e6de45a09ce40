//! A service started before its broker answers HTTP as not ready while it waits, and gets
//! its bus once the broker is there.

use std::time::Duration;

use oxedge_bus::{BusConfig, BusType};
use oxedge_runtime::config::ServiceSection;
use oxedge_testkit::{free_port, http::Api};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn waits_for_the_broker_answering_as_not_ready() {
    let Some(mut nats) = oxedge_testkit::nats::private_nats().await else { return };
    nats.stop().await;
    let service = ServiceSection { port: free_port(), ..Default::default() };
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", service.port));
    let bus = BusConfig { kind: BusType::Nats, url: format!("nats://127.0.0.1:{}", nats.port()), ..Default::default() };
    let starting = tokio::spawn(async move {
        let listener = service.bind().expect("bind");
        oxedge_runtime::join_bus("startup-test", &service, &listener, &bus, None, &CancellationToken::new()).await
    });

    let mut answered = false;
    for _ in 0..100 {
        if api.client.get(api.url("/ping")).send().await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "the port does not answer while the broker is away");
    api.assert_starting("the message bus", "/device/all").await;
    assert!(!starting.is_finished(), "start gave up while the broker was away: {:?}", starting.await.map(|r| r.err()));

    nats.start().await.expect("nats-server restarts");
    let started = tokio::time::timeout(Duration::from_secs(20), starting).await;
    let bus = match started {
        Ok(Ok(Ok(Some(bus)))) => bus,
        Ok(Ok(Ok(None))) => panic!("gave up"),
        Ok(Ok(Err(error))) => panic!("not started: {error:#}"),
        other => panic!("not started in time: {:?}", other.map(|j| j.is_ok())),
    };
    bus.publish("edgex/startup-test", b"up".to_vec().into()).await.expect("publish once started");
}
