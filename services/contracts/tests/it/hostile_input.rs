//! Hostile and malformed input: the parsers never panic, never blow the stack or the memory,
//! and every rejection is a 400 that says what is wrong and where.

use std::time::{Duration, Instant};

use oxedge_contracts::*;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Asserts `r` is either a value or a 400 with a message.
fn ok_or_400<T>(what: &str, r: Result<T>) {
    if let Err(e) = r {
        assert_eq!(e.status_code(), 400, "{what}: {e:?}");
        assert!(!e.message.trim().is_empty(), "{what}: empty error message");
    }
}

/// Feeds `body` to every parser under test.
fn feed_all(body: &[u8]) {
    ok_or_400("Vec<AddDeviceRequest>", from_json::<Vec<AddDeviceRequest>>(body));
    ok_or_400("Vec<DeviceProfileRequest>", from_json::<Vec<DeviceProfileRequest>>(body));
    ok_or_400("Event", from_json::<Event>(body));
    ok_or_400("DeviceProfile (YAML)", from_yaml::<DeviceProfile>(body));
}

/// Any JSON value, nested a few levels, with EdgeX-ish keys so objects sometimes get far into
/// the DTOs.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("apiVersion".to_owned()),
        Just("device".to_owned()),
        Just("profile".to_owned()),
        Just("name".to_owned()),
        Just("adminState".to_owned()),
        Just("operatingState".to_owned()),
        Just("protocols".to_owned()),
        Just("deviceResources".to_owned()),
        Just("properties".to_owned()),
        Just("valueType".to_owned()),
        Just("readWrite".to_owned()),
        Just("readings".to_owned()),
        Just("binaryValue".to_owned()),
        Just("origin".to_owned()),
        "[a-zA-Z]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![Just("UNLOCKED".to_owned()), Just("Float32".to_owned()), Just("RW".to_owned()), ".{0,12}"]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_are_rejected_with_a_400(body in prop::collection::vec(any::<u8>(), 0..512)) {
        feed_all(&body);
    }

    #[test]
    fn arbitrary_json_values_never_panic_and_are_rejected_with_a_400(v in arb_json()) {
        let body = serde_json::to_vec(&v).unwrap();
        feed_all(&body);
        let wrapped = serde_json::to_vec(&json!([{"apiVersion": "v3", "device": v.clone(), "profile": v}])).unwrap();
        feed_all(&wrapped);
    }

    #[test]
    fn arbitrary_text_as_yaml_never_panics(text in "[\\[\\]{}:,&*!|>'\"#%@` \n\t-a-z0-9]{0,256}") {
        ok_or_400("DeviceProfile (YAML)", from_yaml::<DeviceProfile>(text.as_bytes()));
    }

    #[test]
    fn a_valid_device_request_with_one_field_replaced_never_panics(
        field in prop::sample::select(vec![
            "name", "adminState", "operatingState", "protocols", "labels", "autoEvents",
            "serviceName", "profileName", "location", "tags", "properties", "created",
        ]),
        v in arb_json(),
    ) {
        let mut req = json!([{"apiVersion": "v3", "device": {
            "name": "d1", "adminState": "UNLOCKED", "operatingState": "UP",
            "serviceName": "device-virtual", "profileName": "p1",
            "protocols": {"other": {"Address": "x"}}
        }}]);
        req[0]["device"][field] = v;
        let body = serde_json::to_vec(&req).unwrap();
        match from_json::<Vec<AddDeviceRequest>>(&body) {
            Ok(devices) => {
                let mut val = Validator::new();
                devices[0].device.validate(&mut val, "[0].device");
                ok_or_400("validation", val.finish());
            }
            Err(e) => {
                prop_assert_eq!(e.status_code(), 400);
                prop_assert!(e.message.contains("[0].device"), "{}", e.message);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Depth and size attacks.

/// Runs `f` on a thread with a modest stack, so a recursion bug shows up as a failure here
/// rather than only on a big main-thread stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(1 << 20).spawn(f).unwrap().join().expect("parser thread panicked")
}

#[test]
fn a_hundred_thousand_open_brackets_in_json_are_a_400_not_a_stack_overflow() {
    for opener in ["[", "{\"a\":"] {
        let body = opener.repeat(100_000);
        let err = on_small_stack(move || from_json::<Vec<AddDeviceRequest>>(body.as_bytes()).unwrap_err());
        assert_eq!(err.status_code(), 400);
        assert!(!err.message.is_empty());
    }
    let body = format!("[{{\"apiVersion\":\"v3\",\"device\":{{\"location\":{}}}}}]", "[".repeat(100_000));
    let err = on_small_stack(move || from_json::<Vec<AddDeviceRequest>>(body.as_bytes()).unwrap_err());
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("recursion limit"), "{}", err.message);
}

#[test]
fn deeply_nested_yaml_is_a_quick_400_not_a_stack_overflow_or_a_cpu_sink() {
    // libyaml's parser is quadratic in flow nesting depth inside a mapping: unguarded, the
    // third document costs ~20 s of CPU. `from_yaml` refuses it up front.
    let flow = "[".repeat(100_000);
    let block: String = (0..20_000).map(|i| format!("{}- \n", " ".repeat(i % 200))).collect();
    let nested_in_field = format!("name: p\nattributes: {{deep: {}}}\n", "[".repeat(100_000));
    let hidden_closers = format!("name: p\nattributes: {{deep: {}}}\n", "[\"]\", ".repeat(50_000));
    let commented_closers = format!("name: p\nattributes: {{deep: {}}}\n", "[ # ]]\n".repeat(50_000));
    for (what, doc) in [
        ("flow sequences", flow),
        ("block sequences", block),
        ("inside a field", nested_in_field),
        ("closers hidden in strings", hidden_closers),
        ("closers hidden in comments", commented_closers),
    ] {
        let start = Instant::now();
        let err = on_small_stack(move || from_yaml::<DeviceProfile>(doc.as_bytes()).unwrap_err());
        assert_eq!(err.status_code(), 400, "{what}");
        assert!(!err.message.is_empty(), "{what}");
        assert!(start.elapsed() < Duration::from_secs(2), "{what} took {:?}", start.elapsed());
    }
}

#[test]
fn the_yaml_depth_guard_names_its_limit_and_spares_real_documents() {
    let deep = format!("name: p\nattributes: {{deep: {}}}\n", "[".repeat(300));
    let err = from_yaml::<DeviceProfile>(deep.as_bytes()).unwrap_err();
    assert!(err.message.contains("nested deeper than 256 levels"), "{}", err.message);

    // 250 levels get past the guard and stop at serde's recursion limit instead.
    let nested = format!("name: p\nattributes: {{deep: {}{}}}\n", "[".repeat(250), "]".repeat(250));
    let err = from_yaml::<DeviceProfile>(nested.as_bytes()).unwrap_err();
    assert!(err.message.contains("recursion limit"), "{}", err.message);

    // Many balanced brackets, quotes and comments in a real-looking profile are fine.
    let mut doc =
        String::from("name: p # a comment with [ and {\ndescription: \"text with ] and [[[\"\ndeviceResources:\n");
    for i in 0..500 {
        doc.push_str(&format!(
            "  - {{ name: r{i}, properties: {{ valueType: Int8, readWrite: R }}, attributes: {{ a: [1, [2]] }} }}\n"
        ));
    }
    let p: DeviceProfile = from_yaml(doc.as_bytes()).unwrap();
    assert_eq!(p.device_resources.len(), 500);
    assert_eq!(p.info.description, "text with ] and [[[");
}

#[test]
fn billion_laughs_alias_expansion_is_refused_quickly() {
    // Nine levels of ten aliases each: 10^9 strings if expanded.
    let mut doc =
        String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc.push_str("name: laughs\ndeviceResources:\n  - name: r\n    properties: {valueType: Int8, readWrite: R}\n    attributes: {x: *a9}\n");
    let start = Instant::now();
    let err = on_small_stack(move || from_yaml::<DeviceProfile>(doc.as_bytes()).unwrap_err());
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("repetition limit exceeded"), "{}", err.message);
    assert!(start.elapsed() < Duration::from_secs(5), "alias expansion took {:?}", start.elapsed());
}

#[test]
fn a_few_honest_aliases_in_a_profile_still_work() {
    let doc = br#"
name: anchors
deviceResources:
  - name: a
    properties: &props { valueType: Int16, readWrite: RW, scale: 0.1 }
  - name: b
    properties: *props
"#;
    let p: DeviceProfile = from_yaml(doc).unwrap();
    assert_eq!(p.device_resources[1].properties, p.device_resources[0].properties);
}

#[test]
fn a_yaml_document_with_several_documents_or_a_non_mapping_root_is_a_400() {
    for doc in ["name: a\n---\nname: b\n", "- 1\n- 2\n", "just text", "", "~"] {
        let err = from_yaml::<DeviceProfile>(doc.as_bytes()).unwrap_err();
        assert_eq!(err.status_code(), 400, "{doc:?}");
        assert!(!err.message.is_empty(), "{doc:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Names.

fn device(name: &str) -> Device {
    serde_json::from_value(json!({
        "name": name, "adminState": "UNLOCKED", "operatingState": "UP",
        "serviceName": "device-virtual", "profileName": "p1",
        "protocols": {"other": {"Address": "x"}}
    }))
    .unwrap()
}

#[test]
fn bad_names_are_validation_errors_naming_the_field() {
    let long = "x".repeat(257);
    for bad in ["", "   ", "\t", long.as_str(), "a/b", "a#b", "a+b", "a$b", "/", "line\nbreak"] {
        let mut v = Validator::new();
        device(bad).validate(&mut v, "[0].device");
        let err = v.finish().expect_err(bad);
        assert_eq!(err.status_code(), 400);
        assert!(err.message.starts_with("[0].device.name: "), "{bad:?}: {}", err.message);

        let mut profile = DeviceProfile::default();
        profile.info.name = bad.to_owned();
        let mut v = Validator::new();
        profile.validate(&mut v, "[0].profile");
        let msg = v.finish().expect_err(bad).message;
        assert!(msg.contains("[0].profile.name: "), "{bad:?}: {msg}");
    }
    let mut v = Validator::new();
    device(&"x".repeat(256)).validate(&mut v, "[0].device");
    v.finish().expect("256 bytes is the longest accepted name");
}

#[test]
fn bad_names_deep_in_a_profile_name_their_path() {
    let body = br#"[{"apiVersion":"v3","profile":{"name":"p","deviceResources":[
        {"name":"ok","properties":{"valueType":"Int8","readWrite":"R"}},
        {"name":"a/b","properties":{"valueType":"Int8","readWrite":"R"}}],
        "deviceCommands":[{"name":" ","readWrite":"R","resourceOperations":[{"deviceResource":"ok"}]}]}}]"#;
    let reqs: Vec<DeviceProfileRequest> = from_json(body).unwrap();
    let mut v = Validator::new();
    reqs[0].profile.validate(&mut v, "[0].profile");
    let msg = v.finish().unwrap_err().message;
    assert!(msg.contains("[0].profile.deviceResources[1].name: "), "{msg}");
    assert!(msg.contains("[0].profile.deviceCommands[0].name: "), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Unknown enum values.

#[test]
fn unknown_enum_values_are_a_400_naming_the_field_path() {
    let err = from_json::<Vec<AddDeviceRequest>>(
        br#"[{"apiVersion":"v3","device":{"name":"d","adminState":"SLEEPY","operatingState":"UP",
            "serviceName":"s","profileName":"p","protocols":{}}}]"#,
    )
    .unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("[0].device.adminState"), "{}", err.message);
    assert!(err.message.contains("SLEEPY"), "{}", err.message);

    let profile = |value_type: &str, read_write: &str| {
        format!(
            r#"[{{"apiVersion":"v3","profile":{{"name":"p","deviceResources":[
                {{"name":"ok","properties":{{"valueType":"Int8","readWrite":"R"}}}},
                {{"name":"r","properties":{{"valueType":"{value_type}","readWrite":"{read_write}"}}}}]}}}}]"#
        )
    };
    let err = from_json::<Vec<DeviceProfileRequest>>(profile("Float128", "R").as_bytes()).unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("[0].profile.deviceResources[1].properties.valueType"), "{}", err.message);
    assert!(err.message.contains("Float128"), "{}", err.message);

    let err = from_json::<Vec<DeviceProfileRequest>>(profile("Int8", "X").as_bytes()).unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("[0].profile.deviceResources[1].properties.readWrite"), "{}", err.message);

    let yaml = b"name: p\ndeviceResources:\n  - name: r\n    properties: { valueType: Float128, readWrite: R }\n";
    let err = from_yaml::<DeviceProfile>(yaml).unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("deviceResources[0].properties.valueType"), "{}", err.message);

    let err = from_json::<Event>(
        br#"{"id":"x","deviceName":"d","profileName":"p","sourceName":"s","origin":1,
            "readings":[{"resourceName":"r","valueType":"Float128","value":"1"}]}"#,
    )
    .unwrap_err();
    assert!(err.message.contains("readings[0].valueType"), "{}", err.message);
}

// ---------------------------------------------------------------------------------------------
// What we send.

#[test]
fn a_device_omits_empty_optional_fields_like_edgex_but_always_has_protocols() {
    let mut d = device("d1");
    d.protocols.clear();
    let out = serde_json::to_value(&d).unwrap();
    assert_eq!(
        out,
        json!({
            "name": "d1", "adminState": "UNLOCKED", "operatingState": "UP",
            "serviceName": "device-virtual", "profileName": "p1", "protocols": {}
        })
    );
    let text = serde_json::to_string(&d).unwrap();
    for absent in [
        "\"description\"",
        "\"labels\"",
        "\"id\"",
        "\"created\"",
        "\"modified\"",
        "\"parent\"",
        "\"location\"",
        "\"autoEvents\"",
        "\"tags\"",
        "\"properties\"",
    ] {
        assert!(!text.contains(absent), "{absent} must be omitted when empty: {text}");
    }
}

#[test]
fn a_full_device_round_trips_through_json_unchanged() {
    let body = json!({
        "created": 1600926440123u64, "modified": 1600928666321u64,
        "id": "55b68fcf-0fd2-445a-9fae-670b37fb9274", "name": "d1", "parent": "gw",
        "description": "desc", "adminState": "LOCKED", "operatingState": "UNKNOWN",
        "labels": ["a"], "location": {"lat": 45.45},
        "serviceName": "device-virtual", "profileName": "p1",
        "autoEvents": [{"interval": "10s", "onChange": true, "onChangeThreshold": 0.5, "sourceName": "Bool",
                        "retention": {"maxCap": 10, "minCap": 1, "duration": "1h"}}],
        "protocols": {"modbus-tcp": {"Address": "10.0.0.5", "Port": 502}},
        "tags": {"t": 1}, "properties": {"p": [1, 2]}
    });
    let d: Device = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&d).unwrap(), body);
}
