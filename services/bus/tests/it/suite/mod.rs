//! One suite of bus behaviours, run over every backend whose behaviour is the same.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oxedge_bus::{topic, Bus, Bytes, Delivery, MessageEnvelope, Requester, SubscribeOptions, Subscription};
use oxedge_testkit::ServerProcess;

/// How long a test waits for a message that should come.
pub const WAIT: Duration = Duration::from_secs(10);

/// A backend under test: makes clients, and owns the broker when the test may restart it.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A new client named `name`.
    async fn bus(&self, name: &str) -> Arc<dyn Bus>;
}

/// A topic prefix of this test's own, so tests sharing a broker do not see each other.
pub fn scope() -> String {
    format!("edgex/test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A durable name of this test's own.
pub fn durable_name() -> String {
    format!("durable-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn durable(name: &str) -> SubscribeOptions {
    SubscribeOptions { durable: Some(name.to_owned()), capacity: 64 }
}

pub async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no delivery within the time allowed")
        .expect("subscription closed")
}

pub async fn nothing_more(sub: &mut Subscription) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected delivery on {}: {:?}", d.topic, d.payload);
    }
}

/// Receives and acks until `want` arrives, returning the payloads seen (duplicates allowed).
async fn receive_until(sub: &mut Subscription, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let d = next(sub).await;
        let text = String::from_utf8_lossy(&d.payload).into_owned();
        d.ack().await.unwrap();
        let done = text == want;
        seen.push(text);
        if done {
            return seen;
        }
    }
}

pub async fn wildcards_deliver_exactly_the_matching_topics(b: &dyn Backend) {
    let s = scope();
    let bus = b.bus("wildcards").await;
    let mut one_level = bus.subscribe(&[format!("{s}/+/temp")], SubscribeOptions::default()).await.unwrap();
    let mut all = bus.subscribe(&[format!("{s}/#")], SubscribeOptions::default()).await.unwrap();
    for t in ["a/temp", "a/humidity", "b/temp", "a/b/temp"] {
        bus.publish(&format!("{s}/{t}"), Bytes::from(t)).await.unwrap();
    }
    for t in ["a/temp", "b/temp"] {
        let d = next(&mut one_level).await;
        assert_eq!((d.topic.as_str(), &d.payload[..]), (format!("{s}/{t}").as_str(), t.as_bytes()));
        d.ack().await.unwrap();
    }
    nothing_more(&mut one_level).await;
    for t in ["a/temp", "a/humidity", "b/temp", "a/b/temp"] {
        let d = next(&mut all).await;
        assert_eq!(d.topic, format!("{s}/{t}"));
        d.ack().await.unwrap();
    }
}

pub async fn percent_encoded_levels_arrive_as_published(b: &dyn Backend) {
    let s = scope();
    let bus = b.bus("encoded").await;
    let device = topic::encode("Room 1/Sensor #2 (ünïcode)");
    let mut sub = bus.subscribe(&[format!("{s}/+/reading")], SubscribeOptions::default()).await.unwrap();
    let published = format!("{s}/{device}/reading");
    bus.publish(&published, Bytes::from_static(b"x")).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.topic, published);
    assert_eq!(topic::decode(d.topic.split('/').nth(2).unwrap()), "Room 1/Sensor #2 (ünïcode)");
}

pub async fn a_durable_subscriber_gets_on_return_what_was_published_while_away(b: &dyn Backend) {
    let s = scope();
    let name = durable_name();
    let bus = b.bus("durable").await;
    let filter = vec![format!("{s}/#")];
    drop(bus.subscribe(&filter, durable(&name)).await.unwrap());
    for i in 0..50 {
        bus.publish(&format!("{s}/m"), Bytes::from(format!("{i}"))).await.unwrap();
    }
    // A backlog larger than what the subscription may hold: the broker starts delivering
    // before it answers the subscribe, and the subscription must not wait for that answer.
    let small = SubscribeOptions { capacity: 4, ..durable(&name) };
    let mut back = bus.subscribe(&filter, small).await.unwrap();
    for i in 0..50 {
        let d = next(&mut back).await;
        assert_eq!(d.payload, format!("{i}"));
        d.ack().await.unwrap();
    }
    nothing_more(&mut back).await;
}

pub async fn an_unacked_delivery_is_delivered_again_after_the_subscriber_reconnects(b: &dyn Backend) {
    let s = scope();
    let name = durable_name();
    let bus = b.bus("unacked").await;
    let filter = vec![format!("{s}/#")];
    let mut sub = bus.subscribe(&filter, durable(&name)).await.unwrap();
    bus.publish(&format!("{s}/m"), Bytes::from_static(b"first")).await.unwrap();
    bus.publish(&format!("{s}/m"), Bytes::from_static(b"second")).await.unwrap();
    let first = next(&mut sub).await;
    assert_eq!(first.payload, "first");
    first.ack().await.unwrap();
    let second = next(&mut sub).await;
    assert_eq!(second.payload, "second");
    drop(second); // not acked
    drop(sub);
    let mut again = bus.subscribe(&filter, durable(&name)).await.unwrap();
    let d = next(&mut again).await;
    assert_eq!(d.payload, "second", "the unacked message comes again, the acked one does not");
    d.ack().await.unwrap();
    nothing_more(&mut again).await;
}

pub async fn requests_get_their_reply_and_silence_times_out(b: &dyn Backend) {
    let s = scope();
    let bus = b.bus("requester").await;
    let responder = b.bus("responder").await;
    let mut requests = responder.subscribe(&[format!("{s}/req")], SubscribeOptions::default()).await.unwrap();
    let caller = s.split('/').nth(1).unwrap().to_owned();
    let service = caller.clone();
    tokio::spawn(async move {
        while let Some(d) = requests.next().await {
            let req = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
            let answer = req.payload_as::<String>().unwrap().to_uppercase();
            let resp = MessageEnvelope::json(&answer, Some(&req.correlation_id))
                .unwrap()
                .with_request_id(req.request_id.clone());
            responder.publish(&topic::response(&service, &req.request_id), resp.to_bytes().unwrap()).await.unwrap();
            d.ack().await.unwrap();
        }
    });
    let requester = Requester::new(bus, &caller).await.unwrap();
    let req = MessageEnvelope::json("hello", None).unwrap();
    let resp = requester.request(&format!("{s}/req"), req, WAIT).await.unwrap();
    assert_eq!(resp.payload_as::<String>().unwrap(), "HELLO");
    let lost = MessageEnvelope::json("x", None).unwrap();
    let err = requester.request(&format!("{s}/nobody"), lost, Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, oxedge_bus::BusError::Timeout(_)), "{err}");
}

pub async fn a_two_megabyte_payload_arrives_whole(b: &dyn Backend) {
    let s = scope();
    let bus = b.bus("big").await;
    let mut sub = bus.subscribe(&[format!("{s}/big")], SubscribeOptions::default()).await.unwrap();
    let payload: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    bus.publish(&format!("{s}/big"), Bytes::from(payload.clone())).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.payload.len(), payload.len());
    assert!(d.payload == payload);
}

pub async fn malformed_bytes_do_not_break_the_subscription(b: &dyn Backend) {
    let s = scope();
    let bus = b.bus("malformed").await;
    let mut sub = bus.subscribe(&[format!("{s}/#")], SubscribeOptions::default()).await.unwrap();
    bus.publish(&format!("{s}/bad"), Bytes::from_static(b"\xff\xfe{not json\x00")).await.unwrap();
    bus.publish(&format!("{s}/empty"), Bytes::new()).await.unwrap();
    let good = MessageEnvelope::json(&serde_json::json!({"ok": true}), None).unwrap();
    bus.publish(&format!("{s}/good"), good.to_bytes().unwrap()).await.unwrap();
    for _ in 0..2 {
        let d = next(&mut sub).await;
        assert!(MessageEnvelope::from_bytes(&d.payload, &d.topic).is_err());
        d.ack().await.unwrap();
    }
    let d = next(&mut sub).await;
    let env = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
    assert_eq!(env.payload_as::<serde_json::Value>().unwrap()["ok"], true);
}

/// Publish waits while the broker is down and resolves once a restarted broker acked it.
pub async fn publish_resolves_only_once_the_broker_acknowledged(b: &dyn Backend, server: &mut ServerProcess) {
    let s = scope();
    let bus = b.bus("acked").await;
    bus.publish(&format!("{s}/m"), Bytes::from_static(b"while up")).await.unwrap();
    server.kill().await;
    let publisher = bus.clone();
    let topic = format!("{s}/m");
    let pending = tokio::spawn(async move { publisher.publish(&topic, Bytes::from_static(b"while down")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "publish resolved with no broker to acknowledge it");
    assert!(!bus.is_connected());
    server.start().await.unwrap();
    tokio::time::timeout(WAIT, pending).await.expect("publish resolves after the broker is back").unwrap().unwrap();
    assert!(bus.is_connected());
}

/// A broker restart mid-stream: publisher and subscriber reconnect by themselves; every
/// message published after the subscriber is back arrives, in order.
pub async fn after_a_broker_restart_publisher_and_subscriber_continue(b: &dyn Backend, server: &mut ServerProcess) {
    let s = scope();
    let bus = b.bus("restart-pub").await;
    let sub_bus = b.bus("restart-sub").await;
    let mut sub = sub_bus.subscribe(&[format!("{s}/#")], durable(&durable_name())).await.unwrap();
    let topic = format!("{s}/m");
    for i in 0..20 {
        bus.publish(&topic, Bytes::from(format!("{i}"))).await.unwrap();
    }
    let seen = receive_until(&mut sub, "19").await;
    assert_eq!(seen, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());

    server.kill().await;
    server.start().await.unwrap();
    // Probe until the subscriber is back: what is published before it resubscribed may be lost.
    let probe = async {
        for n in 0.. {
            bus.publish(&topic, Bytes::from(format!("probe-{n}"))).await.unwrap();
            if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                d.ack().await.unwrap();
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, probe).await.expect("the subscriber comes back by itself");
    for i in 20..40 {
        bus.publish(&topic, Bytes::from(format!("{i}"))).await.unwrap();
    }
    // At-least-once: what was acked just before the crash may come again (JetStream), and a
    // message may come twice; what was published after the restart comes whole, in order.
    let mut got: Vec<u32> =
        receive_until(&mut sub, "39").await.iter().filter_map(|p| p.parse().ok()).filter(|n| *n >= 20).collect();
    got.dedup();
    assert_eq!(got, (20..40).collect::<Vec<_>>(), "everything published after the restart arrives, in order");
    assert!(bus.is_connected());
}

/// `bus` was connected with client id `id`; it subscribes durably under the same name, as
/// a service does (core-data publishes and subscribes as `core-data`). Both connections
/// must stay up: two MQTT connections with one client id would keep kicking each other off.
pub async fn a_service_subscribes_durably_under_its_own_client_id(bus: Arc<dyn Bus>, id: &str) {
    let s = scope();
    let mut sub = bus.subscribe(&[format!("{s}/#")], durable(id)).await.unwrap();
    for i in 0..50 {
        bus.publish(&format!("{s}/t"), Bytes::from(i.to_string())).await.unwrap();
        let d = next(&mut sub).await;
        assert_eq!(d.payload, i.to_string());
        d.ack().await.unwrap();
    }
    assert!(bus.is_connected());
}

/// Generates one `#[tokio::test]` per suite function for a backend made by `$make`.
#[macro_export]
macro_rules! shared_suite {
    ($make:expr) => {
        $crate::shared_suite!(@tests $make;
            wildcards_deliver_exactly_the_matching_topics,
            percent_encoded_levels_arrive_as_published,
            a_durable_subscriber_gets_on_return_what_was_published_while_away,
            an_unacked_delivery_is_delivered_again_after_the_subscriber_reconnects,
            requests_get_their_reply_and_silence_times_out,
            a_two_megabyte_payload_arrives_whole,
            malformed_bytes_do_not_break_the_subscription,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = $make.await else { return };
                $crate::suite::$name(&backend).await;
            }
        )*
    };
}
