//! A service started before its broker answers HTTP as not ready while it waits, and gets
//! its bus once the broker is there.

use std::time::Duration;

use oxedge_bus::{BusConfig, BusType, Started};
use oxedge_runtime::config::{LogSection, ServiceSection};
use oxedge_testkit::{free_port, http::Api};

#[tokio::test]
async fn waits_for_the_broker_answering_as_not_ready() {
    let Some(mut nats) = oxedge_testkit::nats::private_nats().await else { return };
    nats.stop().await;
    let service = ServiceSection { port: free_port(), ..Default::default() };
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", service.port));
    let bus = BusConfig { kind: BusType::Nats, url: format!("nats://127.0.0.1:{}", nats.port()), ..Default::default() };
    let starting =
        tokio::spawn(async move { oxedge_bus::start("startup-test", &LogSection::default(), &service, &bus).await });

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
    assert!(!starting.is_finished(), "start gave up while the broker was away: {:?}", starting.await);

    nats.start().await.expect("nats-server restarts");
    let started = tokio::time::timeout(Duration::from_secs(20), starting).await;
    let Ok(Ok(Ok(Some(Started { bus, .. })))) = started else { panic!("not started: {started:?}") };
    bus.publish("edgex/startup-test", b"up".to_vec().into()).await.expect("publish once started");
}
