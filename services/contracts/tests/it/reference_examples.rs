//! Every example in EdgeX's own OpenAPI files for core-metadata and core-data (copied unchanged
//! into `reference/edgex-openapi`) either parses into our DTO and round-trips, or is listed
//! here with the reason it does not. A new example in the reference files fails the test until it
//! is mapped or listed.
//!
//! Round trip: the example is parsed with `from_json::<T>`, serialized again, and every field of
//! the example must come back with the same value. Fields our output adds must be ones EdgeX
//! emits too (see `ADDED_BY_US`). Where an example is wrong about EdgeX itself (a documentation
//! erratum) it is corrected first, and the correction is listed in `ERRATA`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use oxedge_contracts::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Test-local wrappers for core-data bodies that the contracts crate has no type for; each holds
// only our `Event` / `Reading` and the envelope.

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddEventRequest {
    #[serde(flatten)]
    base: BaseRequest,
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventResponse {
    #[serde(flatten)]
    base: BaseResponse,
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MultiEventsResponse {
    #[serde(flatten)]
    base: BaseResponse,
    total_count: u64,
    events: Vec<Event>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MultiReadingsResponse {
    #[serde(flatten)]
    base: BaseResponse,
    total_count: u64,
    readings: Vec<Reading>,
}

// ---------------------------------------------------------------------------------------------
// The table: example → the type it is parsed into.

/// The type an example is parsed into.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    AddDevices,
    UpdateDevices,
    AddServices,
    UpdateServices,
    ProfileRequests,
    BasicInfoUpdates,
    AddCommands,
    UpdateCommands,
    AddResources,
    UpdateResources,
    ProfileTags,
    AddWatchers,
    UpdateWatchers,
    DeviceResp,
    MultiDevices,
    ServiceResp,
    MultiServices,
    ProfileResp,
    MultiProfiles,
    MultiBasicInfos,
    ResourceResp,
    WatcherResp,
    MultiWatchers,
    Uom,
    Base,
    WithId,
    WithIdList,
    Count,
    AddEvent,
    EventResp,
    MultiEvents,
    MultiReadings,
}

/// Keys: `file#/components/examples/Name` for named examples, `file METHOD /path where` for an
/// inline `example` (where = `requestBody` or the status code).
const MAPPED: &[(&str, Shape)] = &[
    // core-metadata, named examples
    ("core-metadata.yaml#/components/examples/200Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/400Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/404Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/409Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/416Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/409DeleteExample", Shape::Base),
    ("core-metadata.yaml#/components/examples/423Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/500Example", Shape::Base),
    ("core-metadata.yaml#/components/examples/MultiPOSTStatusExample", Shape::WithIdList),
    ("core-metadata.yaml#/components/examples/MultiPOSTNoIdStatusExample", Shape::WithIdList),
    ("core-metadata.yaml#/components/examples/MultiPOSTDeviceStatusExample", Shape::WithIdList),
    ("core-metadata.yaml#/components/examples/MultiUpdateStatusExample", Shape::WithIdList),
    ("core-metadata.yaml#/components/examples/MultiUpdateDeviceStatusExample", Shape::WithIdList),
    ("core-metadata.yaml#/components/examples/AddDeviceRequest", Shape::AddDevices),
    ("core-metadata.yaml#/components/examples/UpdateDeviceRequest", Shape::UpdateDevices),
    ("core-metadata.yaml#/components/examples/AddDeviceServiceRequest", Shape::AddServices),
    ("core-metadata.yaml#/components/examples/AddDeviceProfileRequest", Shape::ProfileRequests),
    ("core-metadata.yaml#/components/examples/AddDeviceCommandRequest", Shape::AddCommands),
    ("core-metadata.yaml#/components/examples/AddDeviceResourceRequest", Shape::AddResources),
    ("core-metadata.yaml#/components/examples/AddProvisionWatcherRequest", Shape::AddWatchers),
    ("core-metadata.yaml#/components/examples/GetAllDevicesResponse", Shape::MultiDevices),
    ("core-metadata.yaml#/components/examples/GetAllDeviceProfilesResponse", Shape::MultiProfiles),
    ("core-metadata.yaml#/components/examples/GetAllDeviceProfileBasicInfosResponse", Shape::MultiBasicInfos),
    ("core-metadata.yaml#/components/examples/GetAllProvisionWatchersResponse", Shape::MultiWatchers),
    ("core-metadata.yaml#/components/examples/UnitsOfMeasureResponseExample", Shape::Uom),
    // core-metadata, inline examples
    ("core-metadata.yaml GET /device/name/{name} 200", Shape::DeviceResp),
    ("core-metadata.yaml GET /device/id/{id} 200", Shape::DeviceResp),
    ("core-metadata.yaml POST /deviceprofile/uploadfile 201", Shape::WithId),
    ("core-metadata.yaml PUT /deviceprofile/uploadfile 200", Shape::Base),
    ("core-metadata.yaml GET /deviceprofile/name/{name} 200", Shape::ProfileResp),
    ("core-metadata.yaml PATCH /deviceprofile/name/{name}/tags requestBody", Shape::ProfileTags),
    ("core-metadata.yaml PATCH /deviceprofile/basicinfo requestBody", Shape::BasicInfoUpdates),
    ("core-metadata.yaml PATCH /deviceprofile/deviceCommand requestBody", Shape::UpdateCommands),
    ("core-metadata.yaml PATCH /deviceprofile/resource requestBody", Shape::UpdateResources),
    ("core-metadata.yaml GET /deviceresource/profile/{profileName}/resource/{resourceName} 200", Shape::ResourceResp),
    ("core-metadata.yaml PATCH /deviceservice requestBody", Shape::UpdateServices),
    ("core-metadata.yaml GET /deviceservice/all 200", Shape::MultiServices),
    ("core-metadata.yaml GET /deviceservice/name/{name} 200", Shape::ServiceResp),
    ("core-metadata.yaml PATCH /provisionwatcher requestBody", Shape::UpdateWatchers),
    ("core-metadata.yaml GET /provisionwatcher/name/{name} 200", Shape::WatcherResp),
    ("core-metadata.yaml POST /secret 201", Shape::Base),
    // core-data, named examples
    ("core-data.yaml#/components/examples/200Example", Shape::Base),
    ("core-data.yaml#/components/examples/202Example", Shape::Base),
    ("core-data.yaml#/components/examples/400Example", Shape::Base),
    ("core-data.yaml#/components/examples/404Example", Shape::Base),
    ("core-data.yaml#/components/examples/409Example", Shape::Base),
    ("core-data.yaml#/components/examples/416Example", Shape::Base),
    ("core-data.yaml#/components/examples/500Example", Shape::Base),
    ("core-data.yaml#/components/examples/EventExample", Shape::EventResp),
    ("core-data.yaml#/components/examples/AllEventsExample", Shape::MultiEvents),
    ("core-data.yaml#/components/examples/AllReadingsExample", Shape::MultiReadings),
    ("core-data.yaml#/components/examples/ReadingsByResourceNameAndTimeRangeExample", Shape::MultiReadings),
    ("core-data.yaml#/components/examples/CountExample", Shape::Count),
    // core-data, inline examples
    ("core-data.yaml POST /event/{serviceName}/{profileName}/{deviceName}/{sourceName} requestBody", Shape::AddEvent),
    ("core-data.yaml POST /event/{serviceName}/{profileName}/{deviceName}/{sourceName} 201", Shape::WithId),
    ("core-data.yaml POST /secret 201", Shape::Base),
];

/// Examples whose shape the contracts crate does not model, and why.
const UNMODELLED: &[(&str, &str)] = &[
    ("core-metadata.yaml GET /config 200", "ConfigResponse: service configuration, not a contracts DTO"),
    ("core-metadata.yaml GET /ping 200", "PingResponse: served by the runtime, not a contracts DTO"),
    ("core-metadata.yaml GET /version 200", "VersionResponse: served by the runtime, not a contracts DTO"),
    ("core-data.yaml GET /config 200", "ConfigResponse: service configuration, not a contracts DTO"),
    ("core-data.yaml GET /ping 200", "PingResponse: served by the runtime, not a contracts DTO"),
    ("core-data.yaml GET /version 200", "VersionResponse: served by the runtime, not a contracts DTO"),
    (
        "core-data.yaml#/components/examples/AllAggReadingsExample",
        "aggregated readings (EdgeX 4 `aggregateFunc`, numeric `value`): no DTO yet",
    ),
    ("core-data.yaml#/components/examples/AggReadingsByResourceNameExample", "aggregated readings: no DTO yet"),
    ("core-data.yaml#/components/examples/AggReadingsByDeviceNameExample", "aggregated readings: no DTO yet"),
    ("core-data.yaml#/components/examples/AggReadingsByDeviceAndResourceExample", "aggregated readings: no DTO yet"),
];

/// Examples EdgeX itself rejects (Go's `encoding/json` fails on them), so our DTO must reject
/// them too, with a 400 naming the field.
const REJECTED_BY_EDGEX: &[(&str, &str, &str)] = &[
    (
        "core-metadata.yaml PATCH /deviceprofile/deviceCommand requestBody",
        "isHidden is the string \"true\"; Go cannot unmarshal a string into *bool",
        "isHidden",
    ),
    (
        "core-metadata.yaml PATCH /deviceprofile/resource requestBody",
        "isHidden is the string \"false\"; Go cannot unmarshal a string into *bool",
        "[0].resource.isHidden",
    ),
];

// ---------------------------------------------------------------------------------------------
// Exceptions, each explicit.

/// A documentation erratum: the example is wrong about what EdgeX sends or accepts; `fix`
/// turns it into what EdgeX actually sends before we parse it.
struct Erratum {
    example: &'static str,
    what: &'static str,
    fix: fn(&mut Value),
}

const ERRATA: &[Erratum] = &[
    Erratum {
        example: "core-metadata.yaml#/components/examples/GetAllDeviceProfilesResponse",
        what: "resource properties say `type`; the DTO field EdgeX emits is `valueType`",
        fix: |v| {
            each(v, &["profiles", "*", "deviceResources", "*", "properties"], &mut |p| rename(p, "type", "valueType"))
        },
    },
    Erratum {
        example: "core-metadata.yaml#/components/examples/UnitsOfMeasureResponseExample",
        what: "units list `value`; EdgeX's schema and uom.yaml use `values`",
        fix: |v| each(v, &["uom", "units", "*"], &mut |u| rename(u, "value", "values")),
    },
    Erratum {
        example: "core-metadata.yaml#/components/examples/GetAllProvisionWatchersResponse",
        what: "`serviceName` sits in discoveredDevice (EdgeX 2 layout); EdgeX 3+ emits it at the top",
        fix: |v| each(v, &["provisionWatchers", "*"], &mut hoist_service_name),
    },
    Erratum {
        example: "core-metadata.yaml GET /provisionwatcher/name/{name} 200",
        what: "`serviceName` sits in discoveredDevice (EdgeX 2 layout); EdgeX 3+ emits it at the top",
        fix: |v| each(v, &["provisionWatcher"], &mut hoist_service_name),
    },
    Erratum {
        example: "core-metadata.yaml#/components/examples/AddProvisionWatcherRequest",
        what: "`serviceName` sits in discoveredDevice (EdgeX 2 layout); EdgeX 3+ requires it at the top \
               (the uncorrected example is checked to fail validation, as it does in EdgeX)",
        fix: |v| each(v, &["*", "provisionwatcher"], &mut hoist_service_name),
    },
    Erratum {
        example: "core-metadata.yaml PATCH /provisionwatcher requestBody",
        what: "`serviceName` sits in discoveredDevice (EdgeX 2 layout); EdgeX 3+ has it at the top",
        fix: |v| each(v, &["*", "provisionwatcher"], &mut hoist_service_name),
    },
];

/// Fields of an example that do not come back, because they are not part of our DTO or come
/// back in EdgeX's canonical spelling. `strip` edits the *expected* value before comparing.
struct NotKept {
    example: &'static str,
    what: &'static str,
    strip: fn(&mut Value),
}

const NOT_KEPT: &[NotKept] = &[
    NotKept {
        example: "core-data.yaml#/components/examples/EventExample",
        what: "bogus `modified` and `create` inside readings (no such Reading fields in EdgeX)",
        strip: |v| each(v, &["event", "readings", "*"], &mut |r| remove(r, &["modified", "create"])),
    },
    NotKept {
        example: "core-data.yaml#/components/examples/AllEventsExample",
        what: "bogus `modified`/`create` in readings; binaryValue [12, 34] comes back as base64 \"DCI=\" \
               (Go's []byte encoding, which EdgeX emits)",
        strip: |v| {
            each(v, &["events", "*", "readings", "*"], &mut |r| remove(r, &["modified", "create"]));
            each(v, &["events", "*", "readings", "*"], &mut bytes_as_base64);
        },
    },
    NotKept {
        example: "core-data.yaml#/components/examples/AllReadingsExample",
        what: "binaryValue [12, 34] comes back as base64 \"DCI=\"",
        strip: |v| each(v, &["readings", "*"], &mut bytes_as_base64),
    },
    NotKept {
        example: "core-metadata.yaml#/components/examples/AddDeviceProfileRequest",
        what: "`DefaultValue` (accepted: Go matches keys case-insensitively) comes back as `defaultValue`",
        strip: |v| {
            each(v, &["*", "profile", "deviceCommands", "*", "resourceOperations", "*"], &mut |o| {
                rename(o, "DefaultValue", "defaultValue")
            })
        },
    },
    NotKept {
        example: "core-metadata.yaml#/components/examples/AddDeviceCommandRequest",
        what: "`DefaultValue` comes back as `defaultValue`",
        strip: |v| {
            each(v, &["*", "deviceCommand", "resourceOperations", "*"], &mut |o| {
                rename(o, "DefaultValue", "defaultValue")
            })
        },
    },
    NotKept {
        example: "core-metadata.yaml#/components/examples/AddProvisionWatcherRequest",
        what: "`provisionwatcher` / `blockingidentifiers` (accepted case-insensitively, as Go does) come back as \
               `provisionWatcher` / `blockingIdentifiers`",
        strip: |v| {
            each(v, &["*"], &mut |r| rename(r, "provisionwatcher", "provisionWatcher"));
            each(v, &["*", "provisionWatcher"], &mut |w| rename(w, "blockingidentifiers", "blockingIdentifiers"));
        },
    },
    NotKept {
        example: "core-metadata.yaml PATCH /provisionwatcher requestBody",
        what: "`provisionwatcher` comes back as `provisionWatcher`",
        strip: |v| each(v, &["*"], &mut |r| rename(r, "provisionwatcher", "provisionWatcher")),
    },
    NotKept {
        example: "core-metadata.yaml#/components/examples/GetAllProvisionWatchersResponse",
        what: "`created: 0` / `modified: 0` are omitted, as EdgeX's DBTimestamp (omitempty) does",
        strip: |v| {
            each(v, &["provisionWatchers", "*"], &mut |w| {
                if w["created"] == json!(0) && w["modified"] == json!(0) {
                    remove(w, &["created", "modified"]);
                }
            })
        },
    },
];

/// Fields our output may carry although the example lacks them, because EdgeX's Go DTOs emit
/// them too (no `omitempty`). Anything else we add fails the test: EdgeX would not send it.
const ADDED_BY_US: &[(&str, &str)] = &[
    ("isHidden", "DeviceResource/DeviceCommand `isHidden` has no omitempty in EdgeX"),
    ("defaultValue", "ResourceOperation `defaultValue` has no omitempty in EdgeX"),
    ("onChange", "AutoEvent `onChange` has no omitempty in EdgeX"),
    ("onChangeThreshold", "AutoEvent `onChangeThreshold` has no omitempty in EdgeX"),
];

/// The update (PATCH) bodies: EdgeX's Update DTOs hold pointers without `omitempty`, so Go
/// serializes an absent field as `null`, and so do we. Only for these shapes is an added `null` fine.
const NULLS_FOR_ABSENT: &[Shape] = &[
    Shape::UpdateDevices,
    Shape::UpdateServices,
    Shape::BasicInfoUpdates,
    Shape::UpdateCommands,
    Shape::UpdateResources,
    Shape::UpdateWatchers,
];

// ---------------------------------------------------------------------------------------------
// JSON editing helpers.

/// Calls `f` on every value at `path` (`*` = every element of an array or object).
fn each(v: &mut Value, path: &[&str], f: &mut dyn FnMut(&mut Value)) {
    match path.split_first() {
        None => f(v),
        Some((&"*", rest)) => match v {
            Value::Array(a) => a.iter_mut().for_each(|x| each(x, rest, f)),
            Value::Object(o) => o.values_mut().for_each(|x| each(x, rest, f)),
            _ => {}
        },
        Some((key, rest)) => {
            if let Some(x) = v.get_mut(*key) {
                each(x, rest, f);
            }
        }
    }
}

fn rename(v: &mut Value, from: &str, to: &str) {
    if let Some(o) = v.as_object_mut() {
        if let Some(x) = o.remove(from) {
            o.insert(to.to_owned(), x);
        }
    }
}

fn remove(v: &mut Value, keys: &[&str]) {
    if let Some(o) = v.as_object_mut() {
        keys.iter().for_each(|k| {
            o.remove(*k);
        });
    }
}

fn hoist_service_name(w: &mut Value) {
    let name = w.get_mut("discoveredDevice").and_then(|d| d.as_object_mut()).and_then(|d| d.remove("serviceName"));
    if let (Some(name), Some(o)) = (name, w.as_object_mut()) {
        o.entry("serviceName").or_insert(name);
    }
}

fn bytes_as_base64(r: &mut Value) {
    use base64::Engine as _;
    if let Some(Value::Array(a)) = r.get("binaryValue") {
        let bytes: Vec<u8> = a.iter().map(|b| b.as_u64().expect("byte") as u8).collect();
        r["binaryValue"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
}

// ---------------------------------------------------------------------------------------------
// Collecting the examples.

fn openapi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reference/edgex-openapi")
}

fn load_spec(file: &str) -> Value {
    let path = openapi_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the EdgeX reference OpenAPI file {} is missing: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every example of `file`: named ones under components.examples, and inline `example` /
/// `examples` under each operation's requestBody and responses. `$ref`s must resolve.
fn collect(file: &str) -> BTreeMap<String, Value> {
    let spec = load_spec(file);
    let mut out = BTreeMap::new();
    let named = spec["components"]["examples"].as_object().cloned().unwrap_or_default();
    for (name, ex) in &named {
        let value = ex.get("value").unwrap_or_else(|| panic!("{file}: example {name} has no value")).clone();
        out.insert(format!("{file}#/components/examples/{name}"), value);
    }
    let paths = spec["paths"].as_object().unwrap_or_else(|| panic!("{file}: no paths"));
    for (path, ops) in paths {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let mut places: Vec<(String, &Value)> = Vec::new();
            if let Some(body) = op.get("requestBody") {
                places.push(("requestBody".into(), body));
            }
            for (status, resp) in op.get("responses").and_then(Value::as_object).into_iter().flatten() {
                places.push((status.clone(), resp));
            }
            for (place, node) in places {
                let key = format!("{file} {} {path} {place}", method.to_uppercase());
                for (_, content) in node.get("content").and_then(Value::as_object).into_iter().flatten() {
                    if let Some(ex) = content.get("example") {
                        assert!(out.insert(key.clone(), ex.clone()).is_none(), "two inline examples for {key}");
                    }
                    for (name, ex) in content.get("examples").and_then(Value::as_object).into_iter().flatten() {
                        match ex.get("$ref").and_then(Value::as_str) {
                            Some(r) => {
                                let target = r.strip_prefix("#/components/examples/").unwrap_or(r);
                                assert!(named.contains_key(target), "{key}: dangling example $ref {r}");
                            }
                            None => {
                                let value = ex.get("value").cloned().unwrap_or_else(|| ex.clone());
                                out.insert(format!("{key} #{name}"), value);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn all_examples() -> BTreeMap<String, Value> {
    let mut all = collect("core-metadata.yaml");
    all.extend(collect("core-data.yaml"));
    all
}

// ---------------------------------------------------------------------------------------------
// Parsing and comparing.

fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, EdgeXError> {
    let bytes = serde_json::to_vec(v).unwrap();
    let parsed: T = from_json(&bytes)?;
    Ok(serde_json::to_value(&parsed).unwrap())
}

fn parse(shape: Shape, v: &Value) -> Result<Value, EdgeXError> {
    match shape {
        Shape::AddDevices => round_trip::<Vec<AddDeviceRequest>>(v),
        Shape::UpdateDevices => round_trip::<Vec<UpdateDeviceRequest>>(v),
        Shape::AddServices => round_trip::<Vec<AddDeviceServiceRequest>>(v),
        Shape::UpdateServices => round_trip::<Vec<UpdateDeviceServiceRequest>>(v),
        Shape::ProfileRequests => round_trip::<Vec<DeviceProfileRequest>>(v),
        Shape::BasicInfoUpdates => round_trip::<Vec<DeviceProfileBasicInfoRequest>>(v),
        Shape::AddCommands => round_trip::<Vec<AddDeviceCommandRequest>>(v),
        Shape::UpdateCommands => round_trip::<Vec<UpdateDeviceCommandRequest>>(v),
        Shape::AddResources => round_trip::<Vec<AddDeviceResourceRequest>>(v),
        Shape::UpdateResources => round_trip::<Vec<UpdateDeviceResourceRequest>>(v),
        Shape::ProfileTags => round_trip::<DeviceProfileTagsRequest>(v),
        Shape::AddWatchers => round_trip::<Vec<AddProvisionWatcherRequest>>(v),
        Shape::UpdateWatchers => round_trip::<Vec<UpdateProvisionWatcherRequest>>(v),
        Shape::DeviceResp => round_trip::<DeviceResponse>(v),
        Shape::MultiDevices => round_trip::<MultiDevicesResponse>(v),
        Shape::ServiceResp => round_trip::<DeviceServiceResponse>(v),
        Shape::MultiServices => round_trip::<MultiDeviceServicesResponse>(v),
        Shape::ProfileResp => round_trip::<DeviceProfileResponse>(v),
        Shape::MultiProfiles => round_trip::<MultiDeviceProfilesResponse>(v),
        Shape::MultiBasicInfos => round_trip::<MultiDeviceProfileBasicInfosResponse>(v),
        Shape::ResourceResp => round_trip::<DeviceResourceResponse>(v),
        Shape::WatcherResp => round_trip::<ProvisionWatcherResponse>(v),
        Shape::MultiWatchers => round_trip::<MultiProvisionWatchersResponse>(v),
        Shape::Uom => round_trip::<UnitsOfMeasureResponse>(v),
        Shape::Base => round_trip::<BaseResponse>(v),
        Shape::WithId => round_trip::<BaseWithIdResponse>(v),
        Shape::WithIdList => round_trip::<Vec<BaseWithIdResponse>>(v),
        Shape::Count => round_trip::<CountResponse>(v),
        Shape::AddEvent => round_trip::<AddEventRequest>(v),
        Shape::EventResp => round_trip::<EventResponse>(v),
        Shape::MultiEvents => round_trip::<MultiEventsResponse>(v),
        Shape::MultiReadings => round_trip::<MultiReadingsResponse>(v),
    }
}

/// Checks that `actual` holds every field of `expected` with the same value, and that every
/// field it adds is in `ADDED_BY_US`; problems are pushed with their JSON path.
fn compare(path: &str, expected: &Value, actual: &Value, nulls_ok: bool, problems: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    None => problems.push(format!("{path}.{k}: dropped (was {ev})")),
                    Some(av) => compare(&format!("{path}.{k}"), ev, av, nulls_ok, problems),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                let allowed = ADDED_BY_US.iter().any(|(f, _)| f == k) || (nulls_ok && a[k].is_null());
                if !allowed {
                    problems.push(format!("{path}.{k}: added ({}), EdgeX would not send it", a[k]));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(&format!("{path}[{i}]"), ev, av, nulls_ok, problems);
            }
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => {}
        _ if expected == actual => {}
        _ => problems.push(format!("{path}: {expected} came back as {actual}")),
    }
}

fn lookup<'a, T>(table: &'a [T], key: &str, name: impl Fn(&T) -> &str) -> Vec<&'a T> {
    table.iter().filter(|t| name(t) == key).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn every_example_is_either_mapped_to_a_type_or_listed_as_unmodelled() {
    let all = all_examples();
    let mapped: BTreeSet<&str> = MAPPED.iter().map(|(k, _)| *k).collect();
    let unmodelled: BTreeSet<&str> = UNMODELLED.iter().map(|(k, _)| *k).collect();
    assert_eq!(mapped.len(), MAPPED.len(), "an example is mapped twice");
    assert!(mapped.is_disjoint(&unmodelled), "an example is both mapped and unmodelled");

    let unknown: Vec<&String> =
        all.keys().filter(|k| !mapped.contains(k.as_str()) && !unmodelled.contains(k.as_str())).collect();
    assert!(unknown.is_empty(), "new EdgeX examples, neither mapped nor listed as unmodelled: {unknown:#?}");

    let stale: Vec<&&str> = mapped.iter().chain(&unmodelled).filter(|k| !all.contains_key(**k)).collect();
    assert!(stale.is_empty(), "listed examples that no longer exist in the reference files: {stale:#?}");

    for key in ERRATA.iter().map(|e| e.example).chain(NOT_KEPT.iter().map(|n| n.example)) {
        assert!(mapped.contains(key), "exception for an example that is not mapped: {key}");
    }
    for (key, _, _) in REJECTED_BY_EDGEX {
        assert!(mapped.contains(key), "rejection listed for an example that is not mapped: {key}");
    }
    // Coverage, so a shrinking table is noticed.
    assert_eq!(all.len(), MAPPED.len() + UNMODELLED.len());
    assert!(MAPPED.len() >= 56, "mapped examples: {}", MAPPED.len());
}

#[test]
fn every_mapped_example_parses_and_round_trips_every_field_edgex_emits() {
    let all = all_examples();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (key, shape) in MAPPED {
        if REJECTED_BY_EDGEX.iter().any(|(k, _, _)| k == key) {
            continue;
        }
        let mut input = all[*key].clone();
        for e in lookup(ERRATA, key, |e| e.example) {
            (e.fix)(&mut input);
        }
        let actual = match parse(*shape, &input) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{key} as {shape:?}: rejected: {}", e.message));
                continue;
            }
        };
        let mut expected = input.clone();
        for n in lookup(NOT_KEPT, key, |n| n.example) {
            (n.strip)(&mut expected);
        }
        let mut problems = Vec::new();
        compare("$", &expected, &actual, NULLS_FOR_ABSENT.contains(shape), &mut problems);
        if !problems.is_empty() {
            failures.push(format!("{key} as {shape:?}:\n    {}", problems.join("\n    ")));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{} of {} examples fail:\n{}", failures.len(), MAPPED.len(), failures.join("\n"));
    assert_eq!(checked, MAPPED.len() - REJECTED_BY_EDGEX.len());
}

#[test]
fn examples_edgex_itself_rejects_are_rejected_with_a_400_naming_the_field() {
    let all = all_examples();
    for (key, why, field) in REJECTED_BY_EDGEX {
        let shape = MAPPED.iter().find(|(k, _)| k == key).unwrap().1;
        let err = parse(shape, &all[*key]).expect_err(why);
        assert_eq!(err.status_code(), 400, "{key}");
        assert!(err.message.contains(field), "{key}: the error should name {field}: {}", err.message);
    }
}

#[test]
fn request_examples_pass_our_validation_as_they_pass_edgex() {
    let all = all_examples();
    let fixed = |key: &str| {
        let mut v = all[key].clone();
        for e in lookup(ERRATA, key, |e| e.example) {
            (e.fix)(&mut v);
        }
        serde_json::to_vec(&v).unwrap()
    };
    let ok = |v: Validator, key: &str| v.finish().unwrap_or_else(|e| panic!("{key}: {}", e.message));

    let key = "core-metadata.yaml#/components/examples/AddDeviceRequest";
    for (i, r) in from_json::<Vec<AddDeviceRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        check_api_version(&mut v, "", &r.base);
        r.device.validate(&mut v, &format!("[{i}].device"));
        ok(v, key);
    }
    let key = "core-metadata.yaml#/components/examples/UpdateDeviceRequest";
    for (i, r) in from_json::<Vec<UpdateDeviceRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        r.device.validate(&mut v, &format!("[{i}].device"));
        ok(v, key);
    }
    let key = "core-metadata.yaml#/components/examples/AddDeviceServiceRequest";
    for (i, r) in from_json::<Vec<AddDeviceServiceRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        r.service.validate(&mut v, &format!("[{i}].service"));
        ok(v, key);
    }
    let key = "core-metadata.yaml PATCH /deviceservice requestBody";
    for (i, r) in from_json::<Vec<UpdateDeviceServiceRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        r.service.validate(&mut v, &format!("[{i}].service"));
        ok(v, key);
    }
    let key = "core-metadata.yaml#/components/examples/AddDeviceProfileRequest";
    for (i, r) in from_json::<Vec<DeviceProfileRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        r.profile.validate(&mut v, &format!("[{i}].profile"));
        ok(v, key);
        assert_eq!(r.profile.device_commands[0].resource_operations[0].default_value, "false", "DefaultValue alias");
    }
    let key = "core-metadata.yaml#/components/examples/AddProvisionWatcherRequest";
    for (i, r) in from_json::<Vec<AddProvisionWatcherRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        r.provision_watcher.validate(&mut v, &format!("[{i}].provisionWatcher"));
        ok(v, key);
        assert_eq!(r.provision_watcher.blocking_identifiers["port"], ["397", "398", "399"]);
    }
    let key = "core-metadata.yaml PATCH /provisionwatcher requestBody";
    for (i, r) in from_json::<Vec<UpdateProvisionWatcherRequest>>(&fixed(key)).unwrap().iter().enumerate() {
        let mut v = Validator::new();
        r.provision_watcher.validate(&mut v, &format!("[{i}].provisionWatcher"));
        ok(v, key);
    }
    let key = "core-data.yaml POST /event/{serviceName}/{profileName}/{deviceName}/{sourceName} requestBody";
    let r: AddEventRequest = from_json(&fixed(key)).unwrap();
    let mut v = Validator::new();
    r.event.validate(&mut v, "event");
    ok(v, key);
}

#[test]
fn the_uncorrected_provision_watcher_example_fails_validation_as_in_edgex() {
    let all = all_examples();
    let key = "core-metadata.yaml#/components/examples/AddProvisionWatcherRequest";
    let body = serde_json::to_vec(&all[key]).unwrap();
    // EdgeX decodes it (unknown discoveredDevice.serviceName is ignored) and then fails
    // `serviceName: required`; we must answer 400 naming serviceName, at parse or validation.
    let err = match from_json::<Vec<AddProvisionWatcherRequest>>(&body) {
        Err(e) => e,
        Ok(reqs) => {
            let mut v = Validator::new();
            reqs[0].provision_watcher.validate(&mut v, "[0].provisionWatcher");
            v.finish().expect_err("a provision watcher without serviceName must be rejected")
        }
    };
    assert_eq!(err.status_code(), 400);
    assert!(err.message.contains("serviceName"), "{}", err.message);
}

#[test]
fn exception_lists_explain_themselves() {
    for e in ERRATA {
        assert!(!e.what.is_empty(), "{}", e.example);
    }
    for n in NOT_KEPT {
        assert!(!n.what.is_empty(), "{}", n.example);
    }
    for (k, why) in UNMODELLED.iter().chain(ADDED_BY_US) {
        assert!(!why.is_empty(), "{k}");
    }
    // Each correction must actually change its example; a fixed upstream example shows up here.
    let all = all_examples();
    for e in ERRATA {
        let mut v = all[e.example].clone();
        (e.fix)(&mut v);
        assert_ne!(v, all[e.example], "erratum no longer applies to {}: {}", e.example, e.what);
    }
    for n in NOT_KEPT {
        let mut v = all[n.example].clone();
        for e in lookup(ERRATA, n.example, |e| e.example) {
            (e.fix)(&mut v);
        }
        let before = v.clone();
        (n.strip)(&mut v);
        assert_ne!(v, before, "exception no longer applies to {}: {}", n.example, n.what);
    }
}
