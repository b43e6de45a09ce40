//! The whole way north with real brokers: events published on the message bus (Mosquitto)
//! go through FilterByDeviceName → Transform (JSON) → MQTTExport to a second, "cloud"
//! Mosquitto; the cloud subscriber gets exactly the events the filter kept, as JSON, on the
//! topic filled from each event, in order per device.

mod pipeline_support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use oxedge_app_sdk::export::mqtt::{MqttExport, MqttExportSettings};
use oxedge_app_sdk::functions::transform::TransformType;
use oxedge_app_sdk::functions::{Filter, FilterBy, FilterSettings, Transform};
use oxedge_app_sdk::{AppContext, AppServiceConfig, Function, Pipeline};
use oxedge_bus::{Bus, BusConfig, BusType, MessageEnvelope, SubscribeOptions};
use pipeline_support::{event, Service};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

async fn mqtt_bus(url: &str, client_id: &str) -> Arc<dyn Bus> {
    let cfg =
        BusConfig { kind: BusType::Mqtt, url: url.to_owned(), client_id: client_id.to_owned(), ..Default::default() };
    oxedge_bus::connect(&cfg, client_id).await.unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_events_are_filtered_transformed_and_exported_to_the_cloud_broker() {
    let Some(broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let Some(cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let cloud_url = format!("tcp://127.0.0.1:{}", cloud.port());
    let run = unique("north");
    let dir = tempfile::tempdir().unwrap();

    // The cloud's subscriber.
    let watcher = mqtt_bus(&format!("mqtt://127.0.0.1:{}", cloud.port()), &unique("cloud-watch")).await;
    let mut cloud_messages = watcher.subscribe(&[format!("{run}/#")], SubscribeOptions::default()).await.unwrap();

    // The service: presses go north, ovens do not.
    let mut cfg = AppServiceConfig { data_dir: dir.path().to_owned(), ..Default::default() };
    cfg.store_and_forward.enabled = true;
    cfg.trigger.durable_name = unique("app-north");
    cfg.service.shutdown_grace = 1;
    let topic = format!("edgex/events/device/{run}/#");
    let (export_topic, export_client) = (format!("{run}/{{deviceName}}/{{sourceName}}"), unique("export"));
    let build = move |app: &AppContext| {
        let filter = FilterSettings { names: vec!["^press-".to_owned()], filter_out: false };
        let mut settings = MqttExportSettings::new(cloud_url, export_topic);
        settings.client_id = export_client;
        let functions: Vec<Arc<dyn Function>> = vec![
            Arc::new(Filter::new(FilterBy::DeviceName, filter)?),
            Arc::new(Transform::new(TransformType::Json)),
            Arc::new(MqttExport::new(settings, app)?),
        ];
        Ok(vec![Pipeline::new("north", vec![topic], functions)])
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let bus = mqtt_bus(&broker.url, &unique("app")).await;
    let task = tokio::spawn(oxedge_app_sdk::run(
        oxedge_app_sdk::ServiceContext::standalone("app-north", bus, stop.clone()),
        cfg,
        build,
        listener,
    ));
    let service = Service { port, stop, task, http: reqwest::Client::new() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !service.http.get(service.url("/api/v3/health")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(tokio::time::Instant::now() < deadline, "the service did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Devices publish: 40 events each of two presses and an oven, interleaved.
    let publisher = mqtt_bus(&broker.url, &unique("device-service")).await;
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for seq in 0..40 {
        for (device, profile) in [("press-1", "Press"), ("oven-1", "Oven"), ("press-2", "Press")] {
            let mut event = event(device, profile);
            event["readings"][0]["value"] = json!(seq.to_string());
            let envelope = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event}), None).unwrap();
            let topic = oxedge_bus::topic::event(&run, profile, device, "temp");
            oxedge_bus::publish_envelope(&*publisher, &topic, &envelope).await.unwrap();
            sent.entry(device.to_owned()).or_default().push(event);
        }
    }

    // The cloud gets the presses' 80 events, as the JSON of each event, and nothing else.
    let mut received: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for _ in 0..80 {
        let delivery = tokio::time::timeout(Duration::from_secs(20), cloud_messages.next())
            .await
            .expect("the cloud broker got every kept event")
            .unwrap();
        let body: Value = serde_json::from_slice(&delivery.payload).expect("the export sends JSON");
        let device = body["deviceName"].as_str().unwrap().to_owned();
        assert_eq!(delivery.topic, format!("{run}/{device}/temp"), "the topic template filled from the event");
        received.entry(device).or_default().push(body);
        delivery.ack().await.unwrap();
    }
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), cloud_messages.next()).await {
        panic!("the cloud got more than the filter kept: {} {:?}", extra.topic, extra.payload);
    }
    assert_eq!(received.keys().collect::<Vec<_>>(), ["press-1", "press-2"], "the filter kept the presses only");
    for (device, events) in &received {
        let values: Vec<&Value> = events.iter().map(|e| &e["readings"][0]["value"]).collect();
        let expected: Vec<Value> = (0..40).map(|s: u32| json!(s.to_string())).collect();
        assert_eq!(values, expected.iter().collect::<Vec<_>>(), "{device}'s events in order");
        for (got, published) in events.iter().zip(&sent[device]) {
            assert_eq!(got["id"], published["id"]);
            assert_eq!(got["profileName"], "Press");
            assert_eq!(got["readings"][0]["resourceName"], "temp");
        }
    }
    assert_eq!(service.metric("app_pipeline_messages_filtered_total{pipeline=\"north\"}").await, 40.0);
    service.shutdown().await;
}
