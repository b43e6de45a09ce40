//! Pipelines with real Mosquitto brokers: the message bus trigger acknowledges a message
//! only once its export confirmed (a message not confirmed comes again after a restart),
//! and the external MQTT trigger takes raw events from a second broker and publishes the
//! response data there.

mod pipeline_support;

use std::sync::Arc;
use std::time::Duration;

use oxedge_app_sdk::config::TriggerType;
use oxedge_app_sdk::{from_fn, AppServiceConfig, Data, FunctionError, Pipeline};
use oxedge_bus::{Bus, BusConfig, BusType, Bytes, SubscribeOptions};
use pipeline_support::*;
use serde_json::json;
use tokio::sync::mpsc;

async fn mqtt_bus(url: &str, client_id: &str) -> Arc<dyn Bus> {
    let cfg =
        BusConfig { kind: BusType::Mqtt, url: url.to_owned(), client_id: client_id.to_owned(), ..Default::default() };
    oxedge_bus::connect(&cfg, client_id).await.unwrap()
}

#[tokio::test]
async fn a_message_is_acknowledged_only_after_its_export_confirmed() {
    let Some(broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let publisher = mqtt_bus(&broker.url, &unique("publisher")).await;
    let url = broker.url.clone();
    let connect = move |name: String| {
        let url = url.clone();
        async move { mqtt_bus(&url, &name).await }
    };
    acknowledged_only_after_confirmation(publisher, connect, AppServiceConfig::default()).await;
}

#[tokio::test]
async fn a_message_matching_two_pipelines_is_acknowledged_once_both_are_done() {
    let Some(broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let service_name = unique("svc");
    let mut cfg = AppServiceConfig::default();
    cfg.trigger.durable_name = unique("app-two");
    let topic = format!("edgex/events/device/{service_name}/#");
    let publisher = mqtt_bus(&broker.url, &unique("publisher")).await;
    let pipelines = |a, b| {
        vec![
            Pipeline::new("a", vec![topic.clone()], vec![hold(a)]),
            Pipeline::new("b", vec![topic.clone()], vec![hold(b)]),
        ]
    };

    let ((tx_a, mut rx_a), (tx_b, mut rx_b)) = (mpsc::unbounded_channel(), mpsc::unbounded_channel());
    let service = start(cfg.clone(), mqtt_bus(&broker.url, &unique("app")).await, pipelines(tx_a, tx_b)).await;
    publish_event(&*publisher, &service_name, "shared", "P").await;
    let (_, confirm_a) = next_n(&mut rx_a, 1).await.remove(0);
    let (_, unconfirmed_b) = next_n(&mut rx_b, 1).await.remove(0);
    confirm_a.send(Ok(())).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.shutdown().await;
    drop(unconfirmed_b);

    let ((tx_a, mut rx_a), (tx_b, mut rx_b)) = (mpsc::unbounded_channel(), mpsc::unbounded_channel());
    let service = start(cfg, mqtt_bus(&broker.url, &unique("app")).await, pipelines(tx_a, tx_b)).await;
    let (device, _) = next_n(&mut rx_b, 1).await.remove(0);
    assert_eq!(device, "shared", "pipeline b had not confirmed: the message comes again");
    let (device, _) = next_n(&mut rx_a, 1).await.remove(0);
    assert_eq!(device, "shared");
    service.shutdown().await;
}

#[tokio::test]
async fn the_external_mqtt_trigger_takes_raw_events_from_another_broker() {
    let Some(mut cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let url = format!("mqtt://127.0.0.1:{}", cloud.port());
    let mut cfg = AppServiceConfig::default();
    cfg.trigger.kind = TriggerType::ExternalMqtt;
    cfg.trigger.external_mqtt.url = url.clone();
    cfg.trigger.external_mqtt.client_id = unique("app-external");
    cfg.trigger.subscribe_topics = vec!["factory/#".into()];
    cfg.trigger.publish_topic = "answers/{deviceName}".into();
    let answer = Arc::new(from_fn("Answer", |ctx, data| async move {
        let Data::Event(event) = &data else { return Err(FunctionError::new("not an event")) };
        let body = json!({"device": event.device_name, "topic": ctx.apply_template("{receivedTopic}")?});
        ctx.set_response(Bytes::from(body.to_string()), "application/json");
        Ok(Some(data))
    }));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pipelines = vec![Pipeline::new("external", vec![], vec![answer, report(tx)])];
    let service = start(cfg, Arc::new(oxedge_bus::InProcessBus::new()), pipelines).await;

    let peer = mqtt_bus(&url, &unique("peer")).await;
    let mut answers = peer.subscribe(&["answers/#".into()], SubscribeOptions::default()).await.unwrap();
    peer.publish("factory/line-1", Bytes::from_static(b"not json")).await.unwrap();
    let body = json!({"apiVersion": "v3", "event": event("press-1", "Press")}).to_string();
    peer.publish("factory/line-1", Bytes::from(body)).await.unwrap();

    let seen = next_n(&mut rx, 1).await.remove(0);
    assert_eq!((seen.device.as_str(), seen.topic.as_str()), ("press-1", "factory/line-1"));
    let delivery = tokio::time::timeout(Duration::from_secs(20), answers.next()).await.unwrap().unwrap();
    assert_eq!(delivery.topic, "answers/press-1");
    let answer: serde_json::Value = serde_json::from_slice(&delivery.payload).unwrap();
    assert_eq!(answer, json!({"device": "press-1", "topic": "factory/line-1"}));
    delivery.ack().await.unwrap();
    assert_eq!(service.metric("app_trigger_messages_malformed_total").await, 1.0);
    service.shutdown().await;
    cloud.stop().await;
}

#[tokio::test]
async fn the_service_waits_for_its_bus_and_is_not_ready_meanwhile() {
    let Some(mut broker) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    broker.stop().await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    let mut cfg = AppServiceConfig::default();
    cfg.bus.url = url.clone();
    cfg.bus.client_id = unique("app-late");
    cfg.trigger.durable_name = unique("app-late");
    cfg.service.shutdown_grace = 1;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pipelines = vec![Pipeline::new("p", vec![], vec![report(tx)])];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let health = format!("http://127.0.0.1:{}/api/v3/health", listener.local_addr().unwrap().port());
    let stop = tokio_util::sync::CancellationToken::new();
    let build = move |_app: &oxedge_app_sdk::AppContext| Ok(pipelines);
    // What the app service binary does (oxedge_runtime::main): join the bus, answering as
    // not ready meanwhile, then run.
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let joining = oxedge_runtime::join_bus("app-test", &cfg.service, &listener, &cfg.bus, None, &stop);
            let Some(bus) = joining.await? else { return Ok(()) };
            oxedge_app_sdk::run(oxedge_app_sdk::ServiceContext::standalone("app-test", bus, stop), cfg, build, listener)
                .await
        }
    });

    let http = reqwest::Client::new();
    let status = |http: reqwest::Client, health: String| async move {
        http.get(&health).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    for _ in 0..10 {
        let now = status(http.clone(), health.clone()).await;
        assert!(now == 503 || now == 0, "health must not be ready without the bus, got {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.start().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status(http.clone(), health.clone()).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the service did not become ready once the bus was up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let publisher = mqtt_bus(&url, &unique("publisher")).await;
    publish_event(&*publisher, "svc", "late-device", "P").await;
    assert_eq!(next_n(&mut rx, 1).await[0].device, "late-device");
    stop.cancel();
    task.await.unwrap().unwrap();
    broker.stop().await;
}
