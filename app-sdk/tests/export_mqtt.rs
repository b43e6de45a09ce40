//! MQTTExport to a "cloud" Mosquitto of the test's own, which the tests stop and start:
//! store-and-forward delivers everything, in order per device, across a cut and across a
//! restart of the app service; a full store applies its drop policy and counts it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxedge_app_sdk::config::AppServiceConfig;
use oxedge_app_sdk::context::Confirmation;
use oxedge_app_sdk::export::mqtt::{MqttExport, MqttExportSettings};
use oxedge_app_sdk::forward::{DropPolicy, StoreType};
use oxedge_app_sdk::secrets::Secrets;
use oxedge_app_sdk::{AppContext, Context, Data, Function};
use oxedge_bus::{Bus, MqttBus, MqttSettings, SubscribeOptions, Subscription};
use oxedge_testkit::mosquitto::{private_mosquitto, ServerProcess};
use serde_json::json;

const TOPIC: &str = "factory/{deviceName}/{sourceName}";
const DEVICES: [&str; 3] = ["press-1", "press-2", "oven-1"];

/// What the cloud subscriber received: (device, seq) in arrival order.
type Received = Arc<Mutex<Vec<(String, u64)>>>;

/// A durable subscriber on the cloud broker (its session survives the broker's restarts).
async fn subscribe(cloud: &ServerProcess, name: &str) -> Received {
    let bus = MqttBus::connect(MqttSettings::new("127.0.0.1", cloud.port(), format!("{name}-watch"))).unwrap();
    let options = SubscribeOptions { durable: Some(format!("{name}-cloud")), capacity: 1024 };
    let subscription = bus.subscribe(&["factory/#".to_owned()], options).await.unwrap();
    let received: Received = Arc::default();
    tokio::spawn(collect(subscription, received.clone(), bus));
    received
}

async fn collect(mut subscription: Subscription, received: Received, _bus: MqttBus) {
    while let Some(delivery) = subscription.next().await {
        let body: serde_json::Value = serde_json::from_slice(&delivery.payload).unwrap();
        let device = delivery.topic.split('/').nth(1).unwrap().to_owned();
        assert_eq!(body["device"], device.as_str(), "the topic template was filled from this message");
        received.lock().unwrap().push((device, body["seq"].as_u64().unwrap()));
        delivery.ack().await.unwrap();
    }
}

fn app(name: &str, dir: &std::path::Path, store: StoreType, redis: Option<(&str, &str)>) -> AppContext {
    let mut config = AppServiceConfig { data_dir: dir.to_owned(), ..Default::default() };
    let forward = &mut config.store_and_forward;
    forward.enabled = true;
    forward.store = store;
    forward.retry_interval = "100ms".to_owned();
    forward.max_retry_interval = "1s".to_owned();
    if let Some((url, _)) = redis {
        forward.url = url.to_owned();
    }
    // Redis keys go under oxedge:forward:{service}: the test's prefix names the service.
    let service = redis.map_or(name.to_owned(), |(_, prefix)| prefix.to_owned());
    AppContext::new(service, config, Secrets::default(), Arc::default())
}

fn export(app: &AppContext, cloud: &ServerProcess) -> MqttExport {
    let mut settings = MqttExportSettings::new(format!("tcp://127.0.0.1:{}", cloud.port()), TOPIC);
    settings.client_id = format!("{}-export", uuid::Uuid::new_v4().simple());
    MqttExport::new(settings, app).unwrap()
}

/// Runs the export on event `seq` of `device`, as a pipeline would, returning its confirmations.
async fn send(export: &MqttExport, device: &str, seq: u64) -> Vec<Confirmation> {
    let ctx = Context::new(format!("c-{seq}"), "export-test", Secrets::default());
    ctx.set_value("deviceName", device);
    ctx.set_value("sourceName", "temperature");
    let out = export.call(&ctx, Data::Json(json!({ "device": device, "seq": seq }))).await.unwrap();
    assert!(out.is_none(), "MQTTExport ends the pipeline");
    ctx.take_confirmations()
}

async fn all_confirmed(confirmations: Vec<Confirmation>) -> Vec<Result<(), String>> {
    let mut out = Vec::new();
    for confirmation in confirmations {
        out.push(tokio::time::timeout(Duration::from_secs(60), confirmation).await.unwrap().unwrap());
    }
    out
}

async fn wait_for(received: &Received, distinct: usize, within: Duration) -> Vec<(String, u64)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = received.lock().unwrap().clone();
        let unique: std::collections::HashSet<_> = got.iter().collect();
        if unique.len() >= distinct || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that every device's messages arrived, in the order sent: duplicates (QoS 1 allows
/// them) only repeat a message already received, never reorder the first arrivals.
fn assert_complete_and_ordered(got: &[(String, u64)], expected: &BTreeMap<String, Vec<u64>>) {
    let mut firsts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (device, seq) in got {
        if seen.insert((device.clone(), *seq)) {
            firsts.entry(device.clone()).or_default().push(*seq);
        }
    }
    assert_eq!(&firsts, expected, "every message, in order per device");
    let duplicates = got.len() - seen.len();
    assert!(duplicates <= 2 * 256, "{duplicates} duplicates: more than what was in flight when the cut came");
}

/// Sends `per_device` events of each device, one every `interval`, cutting the cloud broker
/// for `cut` after a third of them; everything arrives, in order per device.
async fn cut_mid_stream(per_device: u64, interval: Duration, cut: Duration) {
    let Some(cloud) = private_mosquitto(true).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let received = subscribe(&cloud, &format!("cut-{}", uuid::Uuid::new_v4().simple())).await;
    let app = app("cut", dir.path(), StoreType::Sqlite, None);
    let export = export(&app, &cloud);
    let cloud = Arc::new(tokio::sync::Mutex::new(cloud));
    let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut confirmations = Vec::new();
    let mut outage = None;
    for seq in 0..per_device {
        if seq == per_device / 3 {
            cloud.lock().await.stop().await;
            let cloud = cloud.clone();
            outage = Some(tokio::spawn(async move {
                tokio::time::sleep(cut).await;
                cloud.lock().await.start().await.unwrap();
            }));
        }
        for device in DEVICES {
            confirmations.extend(send(&export, device, seq).await);
            expected.entry(device.to_owned()).or_default().push(seq);
        }
        tokio::time::sleep(interval).await;
    }
    outage.unwrap().await.unwrap();
    let results = all_confirmed(confirmations).await;
    assert!(results.iter().all(Result::is_ok), "every message delivered or stored: {results:?}");
    let total = per_device as usize * DEVICES.len();
    let got = wait_for(&received, total, Duration::from_secs(120)).await;
    assert_complete_and_ordered(&got, &expected);
    let forwarding = app.forwarding().await.unwrap();
    let name = export.forwarder().unwrap().name().to_owned();
    // The cloud's subscriber may get the last messages before the export gets their PUBACKs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while forwarding.metrics().sent(&name) < total as u64 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(forwarding.metrics().sent(&name) >= total as u64);
    assert!(forwarding.metrics().retried(&name) > 0, "the cut made the export retry");
    assert_eq!(forwarding.metrics().dropped_by_policy(&name), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_cloud_broker_for_seconds_loses_nothing_and_keeps_order_per_device() {
    cut_mid_stream(150, Duration::from_millis(10), Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: cuts the cloud broker for 30 s (scripts/test.sh --soak)"]
async fn cutting_the_cloud_broker_for_30_s_loses_nothing_and_keeps_order_per_device() {
    cut_mid_stream(1500, Duration::from_millis(20), Duration::from_secs(30)).await;
}

/// With the cloud down, the service stores what it gets and stops; started again with the
/// same store, it sends the stored messages before new ones of the same device.
async fn restart_while_cloud_is_down(store: StoreType, redis: Option<(&str, &str)>) {
    let Some(mut cloud) = private_mosquitto(true).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let received = subscribe(&cloud, &format!("restart-{}", uuid::Uuid::new_v4().simple())).await;
    cloud.stop().await;

    let first = app("restart", dir.path(), store, redis);
    let export1 = export(&first, &cloud);
    let mut confirmations = Vec::new();
    for seq in 0..50 {
        for device in DEVICES {
            confirmations.extend(send(&export1, device, seq).await);
        }
    }
    let results = all_confirmed(confirmations).await;
    assert!(results.iter().all(Result::is_ok), "stored while the cloud is down: {results:?}");
    let forwarding = first.forwarding().await.unwrap();
    let name = export1.forwarder().unwrap().name().to_owned();
    assert_eq!(forwarding.metrics().queued_in_store(&name), 150, "all 150 wait in the store");
    // The service stops.
    first.shutdown().cancel();
    first.tasks().close();
    first.tasks().wait().await;
    drop((export1, forwarding, first));

    cloud.start().await.unwrap();
    let second = app("restart", dir.path(), store, redis);
    let export2 = export(&second, &cloud);
    let mut confirmations = Vec::new();
    for seq in 50..100 {
        for device in DEVICES {
            confirmations.extend(send(&export2, device, seq).await);
        }
    }
    assert!(all_confirmed(confirmations).await.iter().all(Result::is_ok));
    let got = wait_for(&received, 300, Duration::from_secs(60)).await;
    let expected: BTreeMap<String, Vec<u64>> = DEVICES.iter().map(|d| (d.to_string(), (0..100).collect())).collect();
    assert_complete_and_ordered(&got, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stored_in_sqlite_survive_a_restart_and_go_before_new_ones() {
    restart_while_cloud_is_down(StoreType::Sqlite, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stored_in_redis_survive_a_restart_and_go_before_new_ones() {
    let Some(redis) = oxedge_testkit::redis::test_redis("oxedge:test").await else { return };
    // Keys land under oxedge:forward:{prefix}; the prefix is unique to this test.
    restart_while_cloud_is_down(StoreType::Redis, Some((&redis.url, &redis.prefix))).await;
}

/// A store for 50 with the cloud down: 100 messages make the policy drop 50, counted.
async fn full_store(policy: DropPolicy) -> (Vec<Result<(), String>>, Vec<(String, u64)>, u64) {
    let Some(mut cloud) = private_mosquitto(true).await else { panic!("no Mosquitto") };
    let dir = tempfile::tempdir().unwrap();
    let received = subscribe(&cloud, &format!("full-{}", uuid::Uuid::new_v4().simple())).await;
    cloud.stop().await;
    let mut app = app("full", dir.path(), StoreType::Sqlite, None);
    let mut config = app.config().clone();
    config.store_and_forward.max_items = 50;
    config.store_and_forward.memory_capacity = 1;
    config.store_and_forward.drop_policy = policy;
    app = AppContext::new("full", config, Secrets::default(), Arc::default());
    let export = export(&app, &cloud);
    let mut confirmations = Vec::new();
    for seq in 0..100 {
        confirmations.extend(send(&export, "press-1", seq).await);
    }
    let results = all_confirmed(confirmations).await;
    cloud.start().await.unwrap();
    let got = wait_for(&received, 50, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = received.lock().unwrap().clone();
    assert!(got_all.len() >= got.len());
    let forwarding = app.forwarding().await.unwrap();
    let dropped = forwarding.metrics().dropped_by_policy(export.forwarder().unwrap().name());
    (results, got_all, dropped)
}

fn seqs(got: &[(String, u64)]) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    got.iter().filter(|(_, s)| seen.insert(*s)).map(|(_, s)| *s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_drops_the_oldest_and_counts_them() {
    let (results, got, dropped) = full_store(DropPolicy::DropOldest).await;
    assert_eq!(dropped, 50);
    // Oldest messages of a batch larger than the room left are refused: they are the oldest.
    assert!(results.iter().filter(|r| r.is_err()).count() <= 50);
    // The first message was being sent when the store filled: it is kept; then the newest 49.
    let expected: Vec<u64> = std::iter::once(0).chain(51..100).collect();
    assert_eq!(seqs(&got), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_the_newest_and_counts_them() {
    let (results, got, dropped) = full_store(DropPolicy::RefuseNewest).await;
    let refused: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
    assert_eq!(refused, (50..100).collect::<Vec<_>>(), "the newest 50 are refused");
    assert_eq!(dropped, 50);
    assert_eq!(seqs(&got), (0..50).collect::<Vec<_>>());
}
