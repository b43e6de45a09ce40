//! The built-in functions, each as a pipeline calls it: built from EdgeX parameters, given
//! data in a context, checked on what it returns and leaves in the context.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oxedge_app_sdk::functions::encrypt::{decrypt, Cipher};
use oxedge_app_sdk::functions::{self, Batch, BatchMode};
use oxedge_app_sdk::secrets::{FileSecrets, Secrets};
use oxedge_app_sdk::{Context, Data, Function};
use oxedge_bus::Delivery;
use oxedge_contracts::Event;
use serde_json::{json, Map, Value as Json};

fn event(device: &str, profile: &str, source: &str, resources: &[&str]) -> Data {
    let readings: Vec<Json> = resources
        .iter()
        .map(|r| {
            json!({"id": "4a1a3f52-3d5c-4b0b-9a33-5d2e8e3c1a01", "origin": 1_700_000_000_000_000_000i64,
                   "deviceName": device, "resourceName": r, "profileName": profile, "valueType": "Int16", "value": "7"})
        })
        .collect();
    let event: Event = serde_json::from_value(json!({
        "apiVersion": "v3", "id": "9d3c1a2b-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "deviceName": device,
        "profileName": profile, "sourceName": source, "origin": 1_700_000_000_000_000_000i64, "readings": readings
    }))
    .unwrap();
    Data::Event(Box::new(event))
}

fn ctx() -> Context {
    Context::new("corr-1", "p1", Secrets::default())
}

fn build(name: &str, parameters: Json) -> Arc<dyn Function> {
    let parameters: Map<String, Json> = parameters.as_object().cloned().unwrap();
    functions::build(name, &parameters).expect("a built-in").unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn build_err(name: &str, parameters: Json) -> String {
    let parameters: Map<String, Json> = parameters.as_object().cloned().unwrap();
    match functions::build(name, &parameters).expect("a built-in") {
        Ok(_) => panic!("{name} built from bad parameters"),
        Err(e) => e.to_string(),
    }
}

fn device_of(data: &Data) -> String {
    match data {
        Data::Event(e) => e.device_name.clone(),
        other => panic!("not an event: {other:?}"),
    }
}

fn bytes_of(data: Data) -> (Bytes, String) {
    match data {
        Data::Bytes { bytes, content_type } => (bytes, content_type),
        other => panic!("not bytes: {other:?}"),
    }
}

#[tokio::test]
async fn filters_keep_or_drop_by_name_as_regular_expressions() {
    let keep = build("FilterByDeviceName", json!({"DeviceNames": "Random-Integer-Device, ^boiler$"}));
    let c = ctx();
    assert!(keep.call(&c, event("Random-Integer-Device", "p", "s", &["a"])).await.unwrap().is_some());
    // EdgeX matches anywhere in the name unless anchored.
    assert!(keep.call(&c, event("Random-Integer-Device2", "p", "s", &["a"])).await.unwrap().is_some());
    assert!(keep.call(&c, event("boiler", "p", "s", &["a"])).await.unwrap().is_some());
    assert!(keep.call(&c, event("boiler-2", "p", "s", &["a"])).await.unwrap().is_none());

    let drop = build("FilterByProfileName", json!({"profilenames": "thermo.*", "filterout": true}));
    assert!(drop.call(&c, event("d", "thermostat", "s", &["a"])).await.unwrap().is_none());
    assert_eq!(device_of(&drop.call(&c, event("d", "motor", "s", &["a"])).await.unwrap().unwrap()), "d");

    let source = build("FilterBySourceName", json!({"SourceNames": ["Float32", "Float64"], "FilterOut": "false"}));
    assert!(source.call(&c, event("d", "p", "Float32", &["a"])).await.unwrap().is_some());
    assert!(source.call(&c, event("d", "p", "Int8", &["a"])).await.unwrap().is_none());

    // No names: everything goes through, for and out.
    for filter_out in ["false", "true"] {
        let all = build("FilterByDeviceName", json!({"DeviceNames": "", "FilterOut": filter_out}));
        assert!(all.call(&c, event("x", "p", "s", &["a"])).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn resource_filter_keeps_matching_readings_and_drops_empty_events() {
    let c = ctx();
    let keep = build("FilterByResourceName", json!({"ResourceNames": "^temp"}));
    let Data::Event(kept) = keep.call(&c, event("d", "p", "s", &["temp1", "hum", "temp2"])).await.unwrap().unwrap()
    else {
        panic!("not an event")
    };
    let names: Vec<&str> = kept.readings.iter().map(|r| r.resource_name.as_str()).collect();
    assert_eq!(names, ["temp1", "temp2"]);
    assert!(keep.call(&c, event("d", "p", "s", &["hum"])).await.unwrap().is_none());

    let out = build("FilterByResourceName", json!({"ResourceNames": "^temp", "FilterOut": "true"}));
    let Data::Event(left) = out.call(&c, event("d", "p", "s", &["temp1", "hum"])).await.unwrap().unwrap() else {
        panic!("not an event")
    };
    assert_eq!(left.readings.len(), 1);
    assert_eq!(left.readings[0].resource_name, "hum");
}

#[tokio::test]
async fn filters_refuse_what_is_not_an_event_and_bad_patterns_at_build() {
    let filter = build("FilterByDeviceName", json!({"DeviceNames": "a"}));
    let err = filter.call(&ctx(), Data::Json(json!(1))).await.unwrap_err();
    assert!(err.message.contains("FilterByDeviceName") && err.message.contains("JSON"), "{err}");
    let err = build_err("FilterByDeviceName", json!({"DeviceNames": "a, ([b"}));
    assert!(err.starts_with("DeviceNames: '([b' is not a valid regular expression"), "{err}");
    assert_eq!(build_err("FilterByDeviceName", json!({"FilterOut": "true"})), "DeviceNames: missing");
    assert!(
        build_err("FilterByDeviceName", json!({"DeviceNames": "", "FilterOut": "perhaps"})).starts_with("FilterOut:")
    );
}

#[tokio::test]
async fn transform_writes_json_and_edgex_xml() {
    let c = ctx();
    let json_fn = build("Transform", json!({"Type": "json"}));
    let (bytes, ct) = bytes_of(json_fn.call(&c, event("d", "p", "s", &["a"])).await.unwrap().unwrap());
    assert_eq!(ct, "application/json");
    let back: Event = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back.device_name, "d");

    let xml_fn = build("Transform", json!({"type": "XML"}));
    let (bytes, ct) = bytes_of(xml_fn.call(&c, event("d", "p", "s", &["a"])).await.unwrap().unwrap());
    assert_eq!(ct, "application/xml");
    let xml = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(xml.starts_with("<Event><ApiVersion>v3</ApiVersion><Id>9d3c1a2b"), "{xml}");
    assert!(xml.contains("<Readings><Id>4a1a3f52") && xml.ends_with("</Readings></Event>"), "{xml}");

    assert_eq!(build_err("Transform", json!({"Type": "csv"})), "Type: 'csv' is not json or xml");
    let err = xml_fn.call(&c, Data::Json(json!({}))).await.unwrap_err();
    assert!(err.message.contains("expects an event"), "{err}");
}

fn inflate(algorithm: &str, compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match algorithm {
        "gzip" => flate2::read::GzDecoder::new(compressed).read_to_end(&mut out).unwrap(),
        _ => flate2::read::ZlibDecoder::new(compressed).read_to_end(&mut out).unwrap(),
    };
    out
}

#[tokio::test]
async fn compress_writes_base64_that_decompresses_to_the_payload() {
    use base64::Engine as _;
    let input = event("d", "p", "s", &["a", "b"]);
    let (payload, _) = input.to_payload().unwrap();
    for algorithm in ["gzip", "zlib", "GZIP"] {
        let compress = build("Compress", json!({"Algorithm": algorithm}));
        let (text, ct) = bytes_of(compress.call(&ctx(), input.clone()).await.unwrap().unwrap());
        assert_eq!(ct, "text/plain");
        let compressed = base64::engine::general_purpose::STANDARD.decode(&text).unwrap();
        assert_eq!(inflate(&algorithm.to_ascii_lowercase(), &compressed), payload);
    }
    assert_eq!(build_err("Compress", json!({"Algorithm": "lz4"})), "Algorithm: 'lz4' is not gzip or zlib");
}

#[tokio::test]
async fn encrypt_with_a_key_from_secrets_or_a_file_decrypts_back() {
    let dir = tempfile::tempdir().unwrap();
    let cbc_key: Vec<u8> = (0u8..64).collect();
    let gcm_key: Vec<u8> = (100u8..132).collect();
    let hex = |key: &[u8]| key.iter().map(|b| format!("{b:02x}")).collect::<String>();
    std::fs::write(dir.path().join("aes.json"), json!({"key": hex(&cbc_key)}).to_string()).unwrap();
    std::fs::write(dir.path().join("gcm.hex"), format!("{}\n", hex(&gcm_key))).unwrap();
    let secrets = Secrets::new(Arc::new(FileSecrets::new(dir.path())));
    let c = Context::new("corr", "p", secrets);
    let input = event("d", "p", "s", &["a"]);
    let (payload, _) = input.to_payload().unwrap();

    let edgex = build("Encrypt", json!({"Algorithm": "aes256", "SecretName": "aes", "SecretValueKey": "key"}));
    let (text, ct) = bytes_of(edgex.call(&c, input.clone()).await.unwrap().unwrap());
    assert_eq!(ct, "text/plain");
    assert_eq!(decrypt(Cipher::Aes256CbcHmac, &cbc_key, &text).unwrap(), payload);
    // A fresh IV each time: the same input never gives the same text.
    let (again, _) = bytes_of(edgex.call(&c, input.clone()).await.unwrap().unwrap());
    assert_ne!(again, text);

    let key_file = dir.path().join("gcm.hex").display().to_string();
    let gcm = build("Encrypt", json!({"Algorithm": "aes256-gcm", "KeyFile": key_file}));
    let (text, _) = bytes_of(gcm.call(&c, input.clone()).await.unwrap().unwrap());
    assert_eq!(decrypt(Cipher::Aes256Gcm, &gcm_key, &text).unwrap(), payload);
    assert!(decrypt(Cipher::Aes256Gcm, &cbc_key[..32], &text).is_err(), "a wrong key must not decrypt");

    // A missing key stops the message with the secret named; bad settings fail at build.
    let missing = build("Encrypt", json!({"Algorithm": "aes256", "SecretName": "nope", "SecretValueKey": "key"}));
    let err = missing.call(&c, input.clone()).await.unwrap_err();
    assert!(err.message.contains("SecretName=nope"), "{err}");
    assert!(build_err("Encrypt", json!({"Algorithm": "aes256", "SecretName": "aes"}))
        .starts_with("SecretValueKey: missing"));
    assert!(build_err("Encrypt", json!({"Algorithm": "des"})).starts_with("Algorithm:"));
    let short = dir.path().join("short.hex");
    std::fs::write(&short, "00ff").unwrap();
    let err = build_err("Encrypt", json!({"Algorithm": "aes256", "KeyFile": short.display().to_string()}));
    assert!(err.starts_with("KeyFile: must be 64 bytes"), "{err}");
}

fn delivery(n: usize) -> Delivery {
    Delivery::new(format!("edgex/events/device/svc/p/d/{n}"), Bytes::new())
}

fn topics(ctx: &Context) -> Vec<String> {
    ctx.take_deliveries().into_iter().map(|d| d.topic).collect()
}

#[tokio::test]
async fn batch_by_count_releases_every_n_with_their_deliveries() {
    let batch = build("Batch", json!({"Mode": "bycount", "BatchThreshold": "3"}));
    assert_eq!(batch.flush_every(), None);
    let mut contexts = Vec::new();
    for n in 0..3 {
        let c = ctx();
        c.hold_delivery(delivery(n));
        let out = batch.call(&c, event(&format!("d{n}"), "p", "s", &["a"])).await.unwrap();
        contexts.push((c, out));
    }
    // The first two are held: their contexts answer for nothing any more.
    for (c, out) in &contexts[..2] {
        assert!(out.is_none());
        assert!(topics(c).is_empty());
    }
    let (last, out) = &contexts[2];
    let Some(Data::Batch(items)) = out else { panic!("no batch: {out:?}") };
    let devices: Vec<String> = items.iter().map(device_of).collect();
    assert_eq!(devices, ["d0", "d1", "d2"]);
    let moved = topics(last);
    assert_eq!(moved.len(), 3);
    assert!(moved[0].ends_with("/0") && moved[2].ends_with("/2"), "{moved:?}");
}

#[tokio::test]
async fn batch_by_time_releases_on_flush_only() {
    let batch = build("Batch", json!({"Mode": "bytime", "TimeInterval": "250ms"}));
    assert_eq!(batch.flush_every(), Some(Duration::from_millis(250)));
    for n in 0..5 {
        let c = ctx();
        c.hold_delivery(delivery(n));
        assert!(batch.call(&c, event("d", "p", "s", &["a"])).await.unwrap().is_none());
    }
    let releaser = ctx();
    let Some(Data::Batch(items)) = batch.flush(&releaser).await.unwrap() else { panic!("no batch") };
    assert_eq!(items.len(), 5);
    assert_eq!(topics(&releaser).len(), 5);
    // Nothing held: a flush releases nothing.
    let idle = ctx();
    assert!(batch.flush(&idle).await.unwrap().is_none());
    assert!(topics(&idle).is_empty());
}

#[tokio::test]
async fn batch_by_time_and_count_releases_on_whichever_comes_first() {
    let batch = build(
        "Batch",
        json!({"Mode": "bytimecount", "BatchThreshold": 2, "TimeInterval": "1m", "MergeOnSend": "true", "IsEventData": "true"}),
    );
    assert_eq!(batch.flush_every(), Some(Duration::from_secs(60)));
    let c = ctx();
    c.hold_delivery(delivery(0));
    assert!(batch.call(&c, event("a", "p", "s", &["x"])).await.unwrap().is_none());
    let c = ctx();
    c.hold_delivery(delivery(1));
    // MergeOnSend: one JSON array as bytes.
    let (bytes, ct) = bytes_of(batch.call(&c, event("b", "p", "s", &["x"])).await.unwrap().unwrap());
    assert_eq!(ct, "application/json");
    let array: Vec<Event> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(array.iter().map(|e| e.device_name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(topics(&c).len(), 2);
    // One more, released by the timer.
    let c = ctx();
    c.hold_delivery(delivery(2));
    assert!(batch.call(&c, event("c", "p", "s", &["x"])).await.unwrap().is_none());
    let releaser = ctx();
    assert!(batch.flush(&releaser).await.unwrap().is_some());
    assert_eq!(topics(&releaser).len(), 1);
}

/// EdgeX's metrics-influxdb chain: `ToLineProtocol, Batch (MergeOnSend), HTTPExport` sends the
/// lines of several messages as one body.
#[tokio::test]
async fn line_protocol_batches_merge_into_one_body_of_lines() {
    let lines = build("ToLineProtocol", json!({"Tags": "gateway:gw-1"}));
    let batch = build("Batch", json!({"Mode": "bycount", "BatchThreshold": "2", "MergeOnSend": "true"}));
    let keep = build("JSONLogic", json!({"Rule": "{\"!=\": [{\"var\": \"deviceName\"}, \"skip\"]}"}));
    let c = ctx();
    let mut released = None;
    for device in ["a", "skip", "b"] {
        let Some(kept) = keep.call(&c, event(device, "p", "s", &["x"])).await.unwrap() else { continue };
        let data = lines.call(&c, kept).await.unwrap().unwrap();
        released = batch.call(&c, data).await.unwrap();
    }
    let (bytes, ct) = bytes_of(released.expect("released at the second line"));
    assert_eq!(ct, "text/plain");
    let line =
        |d: &str| format!("x,deviceName={d},gateway=gw-1,profileName=p,sourceName=s value=7i 1700000000000000000\n");
    assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), line("a") + &line("b"));
}

#[test]
fn batch_settings_name_what_is_missing() {
    assert_eq!(build_err("Batch", json!({"Mode": "bycount"})), "BatchThreshold: missing (Mode is bycount)");
    assert_eq!(
        build_err("Batch", json!({"Mode": "bytime", "TimeInterval": "soon"})).split(':').next(),
        Some("TimeInterval")
    );
    assert_eq!(
        build_err("Batch", json!({"Mode": "bytimecount", "TimeInterval": "1s"})),
        "BatchThreshold: missing (Mode is bytimecount)"
    );
    assert_eq!(
        build_err("Batch", json!({"Mode": "bycount", "BatchThreshold": "0"})),
        "BatchThreshold: must be at least 1"
    );
    assert!(build_err("Batch", json!({"Mode": "whenever"})).starts_with("Mode:"));
    assert_eq!(Batch::new(BatchMode::ByCount(1), false).flush_every(), None);
}

#[tokio::test]
async fn add_tags_adds_and_replaces() {
    let add = build("AddTags", json!({"Tags": "GatewayId:HoustonStore000123, Latitude:29.630771"}));
    let mut input = event("d", "p", "s", &["a"]);
    if let Data::Event(e) = &mut input {
        e.tags.insert("Latitude".into(), json!("0"));
        e.tags.insert("kept".into(), json!(true));
    }
    let Data::Event(out) = add.call(&ctx(), input).await.unwrap().unwrap() else { panic!("not an event") };
    assert_eq!(out.tags["GatewayId"], "HoustonStore000123");
    assert_eq!(out.tags["Latitude"], "29.630771");
    assert_eq!(out.tags["kept"], true);
    let map = build("AddTags", json!({"Tags": {"floor": 3}}));
    let Data::Event(out) = map.call(&ctx(), event("d", "p", "s", &["a"])).await.unwrap().unwrap() else {
        panic!("not an event")
    };
    assert_eq!(out.tags["floor"], 3);
    assert_eq!(build_err("AddTags", json!({"Tags": "a:1, b"})), "Tags: 'b' is not key:value");
}

#[tokio::test]
async fn json_conversions_go_both_ways_and_check_events() {
    let c = ctx();
    let to_json = build("ToJsonValue", json!({}));
    let Data::Json(value) = to_json.call(&c, event("d", "p", "s", &["a"])).await.unwrap().unwrap() else {
        panic!("not JSON")
    };
    assert_eq!(value["deviceName"], "d");
    let to_event = build("ToEvent", json!({}));
    assert_eq!(device_of(&to_event.call(&c, Data::Json(value.clone())).await.unwrap().unwrap()), "d");
    let bytes = Data::Bytes { bytes: Bytes::from(value.to_string()), content_type: "application/json".into() };
    assert_eq!(device_of(&to_event.call(&c, bytes).await.unwrap().unwrap()), "d");

    let mut bad = value.clone();
    bad["readings"][0]["valueType"] = json!("Int8");
    bad["readings"][0]["value"] = json!("300");
    let err = to_event.call(&c, Data::Json(bad)).await.unwrap_err();
    assert!(err.message.contains("event.readings[0].value"), "{err}");
    let err = to_event.call(&c, Data::Json(json!({"id": 3}))).await.unwrap_err();
    assert!(err.message.contains("id"), "{err}");
    assert_eq!(build_err("ToEvent", json!({"Strict": "true"})), "Strict: unknown parameter (this function takes none)");
}

#[tokio::test]
async fn set_response_data_sets_the_response_and_passes_the_data_on() {
    let c = ctx();
    let set = build("SetResponseData", json!({"ResponseContentType": "application/x-edgex"}));
    let input = event("d", "p", "s", &["a"]);
    let out = set.call(&c, input.clone()).await.unwrap().unwrap();
    assert_eq!(out, input);
    let (bytes, ct) = c.take_response().unwrap();
    assert_eq!(ct, "application/x-edgex");
    assert_eq!(serde_json::from_slice::<Event>(&bytes).unwrap().device_name, "d");
    let plain = build("SetResponseData", json!({}));
    plain.call(&c, input).await.unwrap();
    assert_eq!(c.take_response().unwrap().1, "application/json");
}

#[test]
fn unknown_names_and_parameters_are_refused() {
    assert!(functions::build("Frobnicate", &Map::new()).is_none());
    let err = build_err("Compress", json!({"Algorithm": "gzip", "Level": "9"}));
    assert!(err.starts_with("Level: unknown parameter (known: Algorithm)"), "{err}");
}

#[tokio::test]
async fn hostile_input_never_panics() {
    let c = ctx();
    let invalid_utf8 =
        Data::Bytes { bytes: Bytes::from_static(b"\xff\xfe{\x00\"a"), content_type: "application/json".into() };
    let binary =
        Data::Bytes { bytes: Bytes::from_static(b"\xff\x00"), content_type: "application/octet-stream".into() };
    let huge_names: Vec<String> = (0..20_000).map(|i| format!("r{i}")).collect();
    let huge_refs: Vec<&str> = huge_names.iter().map(String::as_str).collect();
    let huge = event("d", "p", "s", &huge_refs);
    let long_name = event(&"\u{1}<d>".repeat(300_000), "p", "s", &["a"]);
    let all = [
        build("FilterByResourceName", json!({"ResourceNames": "r1"})),
        build("Transform", json!({"Type": "xml"})),
        build("Transform", json!({"Type": "json"})),
        build("Compress", json!({"Algorithm": "gzip"})),
        build("AddTags", json!({"Tags": "a:b"})),
        build("ToJsonValue", json!({})),
        build("ToEvent", json!({})),
        build("SetResponseData", json!({})),
        build("Batch", json!({"Mode": "bycount", "BatchThreshold": "2"})),
        build("JSONLogic", json!({"Rule": {"some": [{"var": "readings"}, {">": [{"var": "value"}, 5]}]}})),
        build("ToLineProtocol", json!({"Tags": "a:b"})),
    ];
    for function in &all {
        let inputs = [
            invalid_utf8.clone(),
            binary.clone(),
            huge.clone(),
            long_name.clone(),
            Data::Batch(vec![]),
            Data::Json(Json::Null),
        ];
        for data in inputs {
            // Ok or an error, never a panic.
            let _ = function.call(&c, data).await;
        }
    }
    let (xml, _) = bytes_of(all[1].call(&c, huge).await.unwrap().unwrap());
    assert!(xml.len() > 20_000 * 100);
}

#[tokio::test]
async fn wrap_into_event_makes_valid_events_of_raw_input() {
    use oxedge_contracts::validate::Validator;
    let c = ctx();
    let raw =
        |bytes: &'static [u8]| Data::Bytes { bytes: Bytes::from_static(bytes), content_type: "text/plain".into() };
    let check = |data: Data| {
        let Data::Event(event) = data else { panic!("not an event") };
        let mut v = Validator::new();
        event.validate(&mut v, "event");
        v.finish().unwrap_or_else(|e| panic!("{}", e.message));
        event
    };
    let simple = build(
        "WrapIntoEvent",
        json!({"ProfileName": "P", "DeviceName": "D", "ResourceName": "temp", "ValueType": "float64"}),
    );
    let event = check(simple.call(&c, raw(b"21.5")).await.unwrap().unwrap());
    assert_eq!((event.source_name.as_str(), event.readings[0].value.as_deref()), ("temp", Some("21.5")));
    let err = simple.call(&c, raw(b"warm")).await.unwrap_err();
    assert!(err.message.contains("'warm' is not a valid Float64 value"), "{err}");
    assert!(simple.call(&c, raw(b"\xff\xfe")).await.unwrap_err().message.contains("UTF-8"));

    let binary = build(
        "WrapIntoEvent",
        json!({"ProfileName": "P", "DeviceName": "D", "ResourceName": "jpeg", "ValueType": "Binary", "MediaType": "image/jpeg"}),
    );
    let event = check(binary.call(&c, raw(b"\xff\xd8\xff")).await.unwrap().unwrap());
    assert_eq!(event.readings[0].binary_value.as_deref(), Some(&b"\xff\xd8\xff"[..]));

    let object = build(
        "WrapIntoEvent",
        json!({"ProfileName": "P", "DeviceName": "D", "ResourceName": "o", "ValueType": "Object"}),
    );
    let event = check(object.call(&c, raw(br#"{"a": [1, 2]}"#)).await.unwrap().unwrap());
    assert_eq!(event.readings[0].object_value, Some(json!({"a": [1, 2]})));
    assert!(object.call(&c, raw(b"{")).await.is_err());

    let missing = build_err(
        "WrapIntoEvent",
        json!({"ProfileName": "P", "DeviceName": "D", "ResourceName": "r", "ValueType": "Binary"}),
    );
    assert_eq!(missing, "MediaType: missing (ValueType is Binary)");
    let bad = build_err(
        "WrapIntoEvent",
        json!({"ProfileName": "P", "DeviceName": "D", "ResourceName": "r", "ValueType": "Int5"}),
    );
    assert!(bad.starts_with("ValueType: 'Int5'"), "{bad}");
}
