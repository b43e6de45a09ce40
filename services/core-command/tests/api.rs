//! core-command over HTTP, between a real core-metadata and a device service peer answering
//! over REST and over the bus.

mod common;

use std::time::{Duration, Instant};

use common::*;
use oxedge_bus::{topic, MessageEnvelope, SubscribeOptions};
use oxedge_core_command::Transport;
use serde_json::{json, Value};

/// The next response to request `id` (answers to earlier requests skipped).
async fn next(sub: &mut oxedge_bus::Subscription, id: &str) -> (String, MessageEnvelope) {
    loop {
        let d = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("a response").unwrap();
        let env = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
        if env.request_id == id {
            return (d.topic.clone(), env);
        }
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_come_from_the_profiles() {
    let s = start(Transport::Rest).await;
    let one = s.api.get("/device/name/Thermo-1").await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    let cmd = &one.body["deviceCoreCommand"];
    assert_eq!((cmd["deviceName"].as_str(), cmd["profileName"].as_str()), (Some("Thermo-1"), Some("Thermostat")));
    assert_eq!(names(&cmd["coreCommands"]), ["Config", "Temperature", "SetPoint", "Mode", "Reset", "Broken"]);
    let config = &cmd["coreCommands"][0];
    assert_eq!((config["get"].as_bool(), config["set"].as_bool()), (Some(true), Some(true)));
    assert_eq!(config["path"], "/api/v3/device/name/Thermo-1/Config");
    assert_eq!(config["url"].as_str().unwrap(), s.api.base.trim_end_matches("/api/v3"));
    assert_eq!(
        config["parameters"],
        json!([{"resourceName": "SetPoint", "valueType": "Int16"}, {"resourceName": "Mode", "valueType": "String"}])
    );
    let temperature = &cmd["coreCommands"][1];
    assert_eq!((temperature["get"].as_bool(), temperature.get("set")), (Some(true), None));

    let hostile = s.api.get(&format!("/device/name/{}", enc(HOSTILE))).await;
    assert_eq!(hostile.status, 200, "{:?}", hostile.body);
    assert_eq!(
        hostile.body["deviceCoreCommand"]["coreCommands"][0]["path"],
        "/api/v3/device/name/Hostile%20%3F%26%25%C3%A9/Config"
    );

    let all = s.api.get("/device/all").await;
    assert_eq!((all.status, all.body["totalCount"].as_u64()), (200, Some(7)), "{:?}", all.body);
    assert_eq!(all.body["deviceCoreCommands"].as_array().unwrap().len(), 7);
    let page = s.api.get("/device/all?offset=2&limit=3").await;
    assert_eq!(
        (page.body["totalCount"].as_u64(), page.body["deviceCoreCommands"].as_array().unwrap().len()),
        (Some(7), 3)
    );
    let labelled = s.api.get("/device/all?labels=floor1").await;
    assert_eq!(labelled.body["totalCount"], 1, "{:?}", labelled.body);
    assert_eq!(labelled.body["deviceCoreCommands"][0]["deviceName"], "Thermo-1");

    assert_eq!(s.api.get("/device/all?limit=x").await.status, 400);
    assert_eq!(s.api.get("/device/all?offset=100").await.status, 416);
    let missing = s.api.get("/device/name/nobody").await;
    assert_eq!(missing.status, 404);
    assert!(missing.message().contains("nobody"), "{}", missing.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_and_writes_are_relayed_over_rest_with_their_query() {
    let s = start(Transport::Rest).await;
    let req = s
        .api
        .client
        .get(s.api.url("/device/name/Thermo-1/Temperature?ds-pushevent=true&unit=F&x=a%20b"))
        .header("X-Correlation-ID", "corr-1");
    let read = s.api.send(req).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body, event_response("Thermo-1", "Temperature"));
    let got = s.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].method.as_str(), got[0].device.as_str(), got[0].command.as_str()),
        ("GET", "Thermo-1", "Temperature")
    );
    assert_eq!(got[0].query, "ds-pushevent=true&unit=F&x=a%20b", "the query goes on as the caller wrote it");
    assert_eq!(got[0].correlation_id, "corr-1");

    let no_event = s.api.get("/device/name/Thermo-1/Temperature?ds-returnevent=false").await;
    assert_eq!((no_event.status, &no_event.body), (200, &Value::Null));

    let write = s.api.put("/device/name/Thermo-1/Config?mode=fast", &json!({"SetPoint": "21", "Mode": "eco"})).await;
    assert_eq!(write.status, 200, "{:?}", write.body);
    let last = s.received().pop().unwrap();
    assert_eq!((last.method.as_str(), last.command.as_str(), last.query.as_str()), ("PUT", "Config", "mode=fast"));
    assert_eq!(last.body, json!({"SetPoint": "21", "Mode": "eco"}));

    // A name that needs encoding reaches the device service intact.
    let hostile = s.api.get(&format!("/device/name/{}/Temperature", enc(HOSTILE))).await;
    assert_eq!(hostile.status, 200, "{:?}", hostile.body);
    assert_eq!(s.received().pop().unwrap().device, HOSTILE);

    // The device service's own error answer comes back as it was.
    let broken = s.api.get("/device/name/Thermo-1/Broken").await;
    assert_eq!(broken.status, 500);
    assert_eq!(
        broken.body,
        json!({"apiVersion": "v3", "statusCode": 500, "message": "error reading Broken: driver failed"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_and_writes_are_relayed_over_the_bus_as_edgex_does() {
    let s = start(Transport::Bus).await;
    let req = s
        .api
        .client
        .get(s.api.url("/device/name/Thermo-1/Temperature?ds-pushevent=true&unit=F"))
        .header("X-Correlation-ID", "corr-2");
    let read = s.api.send(req).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body, event_response("Thermo-1", "Temperature"));
    let got = s.received().pop().unwrap();
    assert_eq!((got.method.as_str(), got.device.as_str(), got.command.as_str()), ("get", "Thermo-1", "Temperature"));
    assert_eq!(got.query, r#"{"ds-pushevent":"true","unit":"F"}"#);
    assert_eq!((got.correlation_id.as_str(), &got.body), ("corr-2", &Value::Null));

    let no_event = s.api.get("/device/name/Thermo-1/Temperature?ds-returnevent=false").await;
    assert_eq!((no_event.status, &no_event.body), (200, &Value::Null));

    let write = s.api.put("/device/name/Thermo-1/SetPoint", &json!({"SetPoint": 19})).await;
    assert_eq!((write.status, write.body["statusCode"].as_u64()), (200, Some(200)), "{:?}", write.body);
    let got = s.received().pop().unwrap();
    assert_eq!((got.method.as_str(), &got.body), ("set", &json!({"SetPoint": 19})));

    let hostile = s.api.get(&format!("/device/name/{}/Temperature", enc(HOSTILE))).await;
    assert_eq!(hostile.status, 200, "{:?}", hostile.body);
    assert_eq!(s.received().pop().unwrap().device, HOSTILE);

    let broken = s.api.get("/device/name/Thermo-1/Broken").await;
    assert_eq!(broken.status, 500);
    assert!(broken.message().contains("ds-peer") && broken.message().contains("driver failed"), "{}", broken.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_decided_before_the_device_service_is_asked() {
    for transport in [Transport::Rest, Transport::Bus] {
        let s = start(transport).await;
        let cases: [(&str, Option<Value>, u16, &str); 13] = [
            ("/device/name/nobody/Temperature", None, 404, "nobody"),
            ("/device/name/Thermo-1/Nothing", None, 404, "Nothing"),
            ("/device/name/Locked/Temperature", None, 423, "locked"),
            ("/device/name/Down/Temperature", None, 423, "down"),
            ("/device/name/Orphan/Temperature", None, 423, "ds-locked"),
            ("/device/name/Thermo-1/Reset", None, 405, "write-only"),
            ("/device/name/Thermo-1/Temperature", Some(json!({"Temperature": "5"})), 405, "read-only"),
            ("/device/name/Thermo-1/Temperature?ds-returnevent=maybe", None, 400, "ds-returnevent"),
            ("/device/name/Thermo-1/Config", Some(json!(["SetPoint", 1])), 400, "got an array"),
            ("/device/name/Thermo-1/Config", Some(json!({"SetPoint": 1, "Bogus": 2})), 400, "'Bogus'"),
            ("/device/name/Thermo-1/Config", Some(json!({"Mode": "eco"})), 400, "'SetPoint'"),
            ("/device/name/Thermo-1/Config", Some(json!({"SetPoint": null})), 400, "null"),
            ("/device/name/Locked/Config", Some(json!({"SetPoint": 1})), 423, "locked"),
        ];
        for (path, body, status, mentions) in cases {
            let answer = match &body {
                None => s.api.get(path).await,
                Some(body) => s.api.put(path, body).await,
            };
            assert_eq!(answer.status, status, "{transport:?} {path} {body:?}: {:?}", answer.body);
            assert_eq!(answer.body["statusCode"], status);
            assert!(answer.message().contains(mentions), "{path}: '{}' should mention {mentions}", answer.message());
        }
        let malformed = s.api.post_raw("/device/name/Thermo-1/Config", "application/json", "{").await;
        assert_eq!(malformed.status, 405, "POST is not a route: {:?}", malformed.body);
        let malformed =
            s.api.send(s.api.client.put(s.api.url("/device/name/Thermo-1/Config")).body("{\"SetPoint\":")).await;
        assert_eq!(malformed.status, 400);
        assert!(malformed.message().contains("malformed body"), "{}", malformed.message());
        assert_eq!(s.received(), [], "{transport:?}: nothing refused may reach the device service");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_unreachable_device_services_answer_504_and_503_in_time() {
    for transport in [Transport::Rest, Transport::Bus] {
        let s = start(transport).await;
        let started = Instant::now();
        let slow = s.api.get(&format!("/device/name/{SLOW}/Temperature")).await;
        let took = started.elapsed();
        assert_eq!(slow.status, 504, "{transport:?}: {:?}", slow.body);
        assert!(slow.message().contains("did not answer") && slow.message().contains(SLOW), "{}", slow.message());
        assert!(
            took >= COMMAND_TIMEOUT && took < COMMAND_TIMEOUT + Duration::from_secs(2),
            "{transport:?} took {took:?}"
        );
        let slow_write = s.api.put(&format!("/device/name/{SLOW}/SetPoint"), &json!({"SetPoint": 1})).await;
        assert_eq!(slow_write.status, 504);
        if transport == Transport::Rest {
            let gone = s.api.get("/device/name/Gone/Temperature").await;
            assert_eq!(gone.status, 503, "{:?}", gone.body);
            assert!(gone.message().contains("ds-gone") && gone.message().contains("unreachable"), "{}", gone.message());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_core_metadata_commands_answer_503() {
    let mut cfg = oxedge_core_command::CommandConfig::default();
    cfg.service.workers = 1;
    cfg.clients.core_metadata.url = format!("http://{}", closed_port());
    let token = tokio_util::sync::CancellationToken::new();
    let api = start_command(cfg, std::sync::Arc::new(oxedge_bus::InProcessBus::new()), token.clone());
    for path in ["/device/all", "/device/name/d", "/device/name/d/c"] {
        let a = api.get(path).await;
        assert_eq!(a.status, 503, "{path}: {:?}", a.body);
        assert!(a.message().contains("unreachable"), "{}", a.message());
    }
    let health = api.get("/health").await;
    assert_eq!((health.status, health.body["status"].as_str()), (503, Some("DOWN")));
    token.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_get_clear_answers() {
    let s = start(Transport::Rest).await;
    let long = "x".repeat(4000);
    for path in [
        format!("/device/name/{long}"),
        format!("/device/name/{long}/{long}"),
        "/device/name/a%2Fb/c".to_owned(),
        "/device/name/%00/c".to_owned(),
        "/device/name/%F0%9F%92%A3/%25%25".to_owned(),
    ] {
        let a = s.api.get(&path).await;
        assert!(matches!(a.status, 400 | 404), "{}: {} {:?}", &path[..path.len().min(60)], a.status, a.body);
        assert!(!a.message().is_empty());
    }
    assert_eq!(s.received(), []);
}

#[tokio::test(flavor = "multi_thread")]
async fn bus_clients_command_devices_through_core_command() {
    let s = start(Transport::Bus).await;
    let mut responses =
        s.bus.subscribe(&["edgex/response/core-command/#".to_owned()], SubscribeOptions::default()).await.unwrap();
    // core-command subscribes when it starts; wait until it answers.
    let ask = |topic: String, env: MessageEnvelope| {
        let bus = s.bus.clone();
        async move { bus.publish(&topic, env.to_bytes().unwrap()).await.unwrap() }
    };
    let mut query = MessageEnvelope::json(&Value::Null, Some("c-q")).unwrap().with_request_id("q-1");
    query.query_params.insert("limit".into(), "2".into());
    let mut answered = None;
    for _ in 0..50 {
        ask("edgex/core/commandquery/request/all".to_owned(), query.clone()).await;
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(100), responses.next()).await {
            answered = Some(MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap());
            break;
        }
    }
    let all = answered.expect("core-command answers command queries on the bus");
    let body: Value = all.payload_as().unwrap();
    assert_eq!((all.request_id.as_str(), body["totalCount"].as_u64()), ("q-1", Some(7)), "{body}");
    assert_eq!(body["deviceCoreCommands"].as_array().unwrap().len(), 2);

    let get = MessageEnvelope::json(&Value::Null, Some("c-1")).unwrap().with_request_id("r-1");
    ask(topic::core_command_request(HOSTILE, "Temperature", "get"), get).await;
    let (topic, reply) = next(&mut responses, "r-1").await;
    assert_eq!((topic.as_str(), reply.error_code), ("edgex/response/core-command/r-1", 0));
    assert_eq!(reply.payload_as::<Value>().unwrap(), event_response(HOSTILE, "Temperature"));
    assert_eq!(s.received().pop().unwrap().correlation_id, "c-1");

    let set = MessageEnvelope::json(&json!({"Reset": "true"}), None).unwrap().with_request_id("r-2");
    ask(topic::core_command_request("Thermo-1", "Reset", "set"), set).await;
    let (_, reply) = next(&mut responses, "r-2").await;
    assert_eq!((reply.request_id.as_str(), reply.error_code), ("r-2", 0), "{:?}", reply.payload_bytes());

    let refused = MessageEnvelope::json(&json!({"Temperature": "1"}), None).unwrap().with_request_id("r-3");
    ask(topic::core_command_request("Thermo-1", "Temperature", "set"), refused).await;
    let (_, reply) = next(&mut responses, "r-3").await;
    assert_eq!((reply.request_id.as_str(), reply.error_code), ("r-3", 1));
    assert!(String::from_utf8(reply.payload_bytes().unwrap()).unwrap().contains("read-only"));
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_in_core_metadata_apply_to_the_next_command() {
    let s = start(Transport::Rest).await;
    assert_eq!(s.api.get("/device/name/Thermo-1/Temperature").await.status, 200);
    assert_eq!(s.api.get("/device/name/Thermo-1/Temperature").await.status, 200);
    let lock = json!([{"apiVersion": "v3", "device": {"name": "Thermo-1", "adminState": "LOCKED"}}]);
    let patched = s.metadata.patch("/device", &lock).await;
    assert_eq!(patched.item(0)["statusCode"], 200, "{:?}", patched.body);
    // core-metadata announces the change on the bus; core-command drops what it had read.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let a = s.api.get("/device/name/Thermo-1/Temperature").await;
        if a.status == 423 {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was not seen: {} {:?}", a.status, a.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unlock = json!([{"apiVersion": "v3", "device": {"name": "Thermo-1", "adminState": "UNLOCKED"}}]);
    s.metadata.patch("/device", &unlock).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while s.api.get("/device/name/Thermo-1/Temperature").await.status != 200 {
        assert!(Instant::now() < deadline, "the unlock was not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_cross_a_real_mqtt_broker() {
    let Some(broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let cfg = oxedge_bus::BusConfig { kind: oxedge_bus::BusType::Mqtt, url: broker.url.clone(), ..Default::default() };
    let bus = oxedge_bus::connect(&cfg, "core-command").await.expect("core-command joins the broker");
    let peer_bus = oxedge_bus::connect(&cfg, "ds-peer").await.expect("the device service joins the broker");
    let s = start_on(Transport::Bus, bus, peer_bus, |_| {}).await;
    // The peer's subscription may take a moment to reach the broker.
    let deadline = Instant::now() + Duration::from_secs(5);
    let read = loop {
        let a = s.api.get("/device/name/Thermo-1/Temperature?ds-pushevent=true").await;
        if a.status != 504 || Instant::now() > deadline {
            break a;
        }
    };
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body, event_response("Thermo-1", "Temperature"));
    let write = s.api.put("/device/name/Thermo-1/Config", &json!({"SetPoint": "20"})).await;
    assert_eq!(write.status, 200, "{:?}", write.body);
    let got = s.received().pop().unwrap();
    assert_eq!((got.method.as_str(), &got.body), ("set", &json!({"SetPoint": "20"})));
    let slow = s.api.get(&format!("/device/name/{SLOW}/Temperature")).await;
    assert_eq!(slow.status, 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absent_broker_neither_hangs_commands_nor_shutdown() {
    let cfg = oxedge_bus::BusConfig {
        kind: oxedge_bus::BusType::Mqtt,
        url: format!("mqtt://{}", closed_port()),
        ..Default::default()
    };
    let dead = oxedge_bus::connect(&cfg, "core-command").await.expect("connects in the background");
    let s = start_on(Transport::Bus, dead.clone(), std::sync::Arc::new(oxedge_bus::InProcessBus::new()), |_| {}).await;
    let started = Instant::now();
    let a = s.api.get("/device/name/Thermo-1/Temperature").await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(a.message().contains("not connected"), "{}", a.message());
    assert!(started.elapsed() < COMMAND_TIMEOUT + Duration::from_secs(1), "took {:?}", started.elapsed());

    let mut cmd = oxedge_core_command::CommandConfig::default();
    cmd.service.shutdown_grace = 1;
    cmd.command.transport = Transport::Bus;
    let token = tokio_util::sync::CancellationToken::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = oxedge_runtime::ServiceContext::standalone("core-command", dead, token.clone());
    let served = tokio::spawn(oxedge_core_command::run(ctx, cmd, listener));
    tokio::time::sleep(Duration::from_millis(200)).await;
    token.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), served).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "core-command did not stop: {stopped:?}");
}
