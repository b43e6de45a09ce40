//! core-metadata's REST API over real HTTP: EdgeX's paths, status codes and JSON shapes,
//! on SQLite and on Redis.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, device, one, profile, service, Backend, Server};

/// EdgeX's reference files: `OXEDGE_REFERENCE_DIR`, else the repository's `reference/`.
fn reference_dir() -> PathBuf {
    std::env::var_os("OXEDGE_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reference"))
}

fn reference_profiles() -> Vec<(String, Vec<u8>)> {
    let dir = reference_dir().join("edgex-profiles");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected EdgeX's reference profiles in {}", dir.display());
    files.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).expect("read profile"))).collect()
}

/// EdgeX's example named `name` from core-metadata.yaml's `components.examples`.
fn edgex_example(name: &str) -> Value {
    let path = reference_dir().join("edgex-openapi/core-metadata.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_norway::from_str(&text).expect("core-metadata.yaml is YAML");
    doc["components"]["examples"][name]["value"].clone()
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

/// Asserts a 207 batch answer whose items have `statuses`, in order.
fn assert_items(a: &common::Answer, statuses: &[u16]) {
    assert_eq!(a.status, 207, "{:?}", a.body);
    let items = a.body.as_array().unwrap_or_else(|| panic!("not an array: {:?}", a.body));
    let got: Vec<u64> = items.iter().map(|i| i["statusCode"].as_u64().unwrap_or_default()).collect();
    let want: Vec<u64> = statuses.iter().map(|s| u64::from(*s)).collect();
    assert_eq!(got, want, "{:?}", a.body);
    for it in items {
        assert_eq!(it["apiVersion"], "v3", "{it}");
    }
}

/// Asserts EdgeX's error shape `{apiVersion, statusCode, message}` with `status`.
fn assert_error(a: &common::Answer, status: u16) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.body["apiVersion"], "v3", "{:?}", a.body);
    assert_eq!(a.body["statusCode"], status, "{:?}", a.body);
    assert!(!a.message().is_empty(), "{:?}", a.body);
    assert!(a.content_type.starts_with("application/json"), "{}", a.content_type);
}

async fn add_service(s: &Server, name: &str) -> String {
    let a = s.post("/deviceservice", &one("service", "", service(name))).await;
    assert_items(&a, &[201]);
    a.item(0)["id"].as_str().unwrap().to_owned()
}

async fn add_profile(s: &Server, p: Value) {
    let a = s.post("/deviceprofile", &one("profile", "", p)).await;
    assert_items(&a, &[201]);
}

async fn add_device(s: &Server, d: Value) -> String {
    let a = s.post("/device", &one("device", "", d)).await;
    assert_items(&a, &[201]);
    a.item(0)["id"].as_str().unwrap().to_owned()
}

macro_rules! on_both_backends {
    ($flow:ident: $sqlite:ident, $redis:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let mut s = common::start().await;
            $flow(&mut s).await;
        }

        #[tokio::test]
        async fn $redis() {
            if let Some(mut s) = common::start_on(Backend::Redis).await {
                $flow(&mut s).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Device services

on_both_backends!(device_service_flow:
    device_services_are_added_listed_updated_and_deleted_on_sqlite,
    device_services_are_added_listed_updated_and_deleted_on_redis);

async fn device_service_flow(s: &mut Server) {
    let mut hvac = service("ds-a");
    hvac["labels"] = json!(["hvac"]);
    let batch = json!([
        { "apiVersion": "v3", "requestId": "r1", "service": hvac },
        { "apiVersion": "v3", "requestId": "r2", "service": service("ds-a") },
        { "apiVersion": "v3", "requestId": "r3", "service": service("ds-b") },
        { "apiVersion": "v3", "requestId": "r4", "service": service("ds-c") },
    ]);
    let a = s.post("/deviceservice", &batch).await;
    assert_items(&a, &[201, 409, 201, 201]);
    assert_eq!(a.item(0)["requestId"], "r1");
    assert!(is_uuid(&a.item(0)["id"]), "{:?}", a.body);
    assert_eq!(a.item(1)["requestId"], "r2");
    assert!(a.item(1)["message"].as_str().is_some_and(|m| m.contains("ds-a")), "{:?}", a.body);
    assert!(a.item(1).get("id").is_none(), "{:?}", a.body);
    let id_a = a.item(0)["id"].clone();
    let id_b = a.item(2)["id"].as_str().unwrap().to_owned();

    let g = s.get("/deviceservice/name/ds-a").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["apiVersion"], "v3");
    assert_eq!(g.body["statusCode"], 200);
    let svc = &g.body["service"];
    assert_eq!(svc["id"], id_a);
    assert_eq!(svc["name"], "ds-a");
    assert_eq!(svc["labels"], json!(["hvac"]));
    assert_eq!(svc["baseAddress"], "http://ds-a:59900");
    assert_eq!(svc["adminState"], "UNLOCKED");
    assert!(svc["created"].as_i64().unwrap() > 0, "{svc}");
    assert!(svc["modified"].as_i64().unwrap() > 0, "{svc}");
    assert_error(&s.get("/deviceservice/name/nope").await, 404);

    // Paging and filters.
    let all = s.get("/deviceservice/all").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["totalCount"], 3);
    assert_eq!(all.body["services"].as_array().unwrap().len(), 3);
    let page = s.get("/deviceservice/all?offset=1&limit=1").await;
    assert_eq!(page.body["totalCount"], 3);
    assert_eq!(page.body["services"].as_array().unwrap().len(), 1);
    let hvac = s.get("/deviceservice/all?labels=hvac").await;
    assert_eq!(hvac.body["totalCount"], 1);
    assert_eq!(hvac.body["services"][0]["name"], "ds-a");
    let none = s.get("/deviceservice/all?labels=nothing").await;
    assert_eq!(none.status, 200);
    assert_eq!(none.body["totalCount"], 0);
    assert_eq!(none.body["services"], json!([]));
    let unlimited = s.get("/deviceservice/all?limit=-1").await;
    assert_eq!(unlimited.body["services"].as_array().unwrap().len(), 3);
    let too_many = s.get("/deviceservice/all?limit=100000").await;
    assert_error(&too_many, 400);
    assert!(too_many.message().contains("limit"), "{}", too_many.message());
    assert_error(&s.get("/deviceservice/all?offset=10").await, 416);

    // Rename by id, change by name, unknown.
    let patch = json!([
        { "apiVersion": "v3", "requestId": "p1", "service": { "id": id_b, "name": "ds-b2" } },
        { "apiVersion": "v3", "requestId": "p2", "service": { "name": "ds-a", "adminState": "LOCKED" } },
        { "apiVersion": "v3", "requestId": "p3", "service": { "name": "ghost", "adminState": "LOCKED" } },
    ]);
    let a = s.patch("/deviceservice", &patch).await;
    assert_items(&a, &[200, 200, 404]);
    assert_eq!(a.item(2)["requestId"], "p3");
    let renamed = s.get("/deviceservice/name/ds-b2").await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["service"]["id"], id_b.as_str());
    assert_error(&s.get("/deviceservice/name/ds-b").await, 404);
    assert_eq!(s.get("/deviceservice/name/ds-a").await.body["service"]["adminState"], "LOCKED");

    let d = s.delete("/deviceservice/name/ds-c").await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body, json!({ "apiVersion": "v3", "statusCode": 200 }));
    assert_error(&s.get("/deviceservice/name/ds-c").await, 404);
    assert_error(&s.delete("/deviceservice/name/ds-c").await, 404);
}

// ---------------------------------------------------------------------------------------------
// Device profiles

on_both_backends!(device_profile_flow:
    device_profiles_are_uploaded_queried_edited_and_deleted_on_sqlite,
    device_profiles_are_uploaded_queried_edited_and_deleted_on_redis);

async fn device_profile_flow(s: &mut Server) {
    // JSON batch, with a duplicate.
    let batch = json!([
        { "apiVersion": "v3", "requestId": "a", "profile": profile("p-json") },
        { "apiVersion": "v3", "requestId": "b", "profile": profile("p-json") },
    ]);
    let a = s.post("/deviceprofile", &batch).await;
    assert_items(&a, &[201, 409]);
    assert!(is_uuid(&a.item(0)["id"]));

    // Every EdgeX reference profile, uploaded as a multipart file.
    for (path, file) in reference_profiles() {
        let a = s.upload(Method::POST, "/deviceprofile/uploadfile", file.clone()).await;
        assert_eq!(a.status, 201, "{path}: {:?}", a.body);
        assert_eq!(a.body["statusCode"], 201, "{path}");
        assert!(is_uuid(&a.body["id"]), "{path}: {:?}", a.body);
        let again = s.upload(Method::POST, "/deviceprofile/uploadfile", file).await;
        assert_error(&again, 409);
    }
    let bool_profile = s.get("/deviceprofile/name/Random-Boolean-Device").await;
    assert_eq!(bool_profile.status, 200);
    let p = &bool_profile.body["profile"];
    assert_eq!(p["manufacturer"], "IOTech");
    assert_eq!(p["deviceResources"][0]["name"], "EnableRandomization_Bool");
    assert_eq!(p["deviceResources"][0]["properties"]["readWrite"], "W");
    assert!(p["created"].as_i64().unwrap() > 0);

    // A raw YAML body.
    let yaml = b"name: p-yaml\nmanufacturer: Acme\nmodel: Y-2\ndeviceResources:\n  - name: Level\n    properties:\n      valueType: Int16\n      readWrite: R\n".to_vec();
    let a = s.raw(Method::POST, "/deviceprofile/uploadfile", "application/x-yaml", yaml).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let yaml_id = a.body["id"].clone();

    // PUT /uploadfile replaces, keeping the id.
    let yaml = b"name: p-yaml\nmanufacturer: Acme\nmodel: Y-3\ndescription: second\ndeviceResources:\n  - name: Level\n    properties:\n      valueType: Int16\n      readWrite: R\n".to_vec();
    let a = s.upload(Method::PUT, "/deviceprofile/uploadfile", yaml).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let p = s.get("/deviceprofile/name/p-yaml").await.body["profile"].clone();
    assert_eq!(p["model"], "Y-3");
    assert_eq!(p["description"], "second");
    assert_eq!(p["id"], yaml_id);
    let ghost = b"name: ghost\ndeviceResources: []\n".to_vec();
    assert_error(&s.upload(Method::PUT, "/deviceprofile/uploadfile", ghost).await, 404);

    // PUT /deviceprofile batch.
    let mut changed = profile("p-json");
    changed["description"] = json!("changed");
    let a = s
        .put(
            "/deviceprofile",
            &json!([
                { "apiVersion": "v3", "requestId": "u1", "profile": changed },
                { "apiVersion": "v3", "requestId": "u2", "profile": profile("ghost") },
            ]),
        )
        .await;
    assert_items(&a, &[200, 404]);
    assert_eq!(a.item(0)["requestId"], "u1");
    assert_eq!(s.get("/deviceprofile/name/p-json").await.body["profile"]["description"], "changed");

    // Queries.
    let by_m = s.get("/deviceprofile/manufacturer/IOTech").await;
    assert_eq!(by_m.status, 200);
    assert_eq!(by_m.body["totalCount"], 3);
    assert_eq!(by_m.body["profiles"].as_array().unwrap().len(), 3);
    assert_eq!(s.get("/deviceprofile/model/Device-Virtual-01").await.body["totalCount"], 3);
    assert_eq!(s.get("/deviceprofile/manufacturer/IOTech/model/Device-Virtual-01").await.body["totalCount"], 3);
    assert_eq!(s.get("/deviceprofile/manufacturer/Intel%20Corp./model/Nope").await.body["totalCount"], 0);
    assert_eq!(s.get("/deviceprofile/manufacturer/Intel%20Corp.").await.body["totalCount"], 2);
    let all = s.get("/deviceprofile/all?limit=-1").await;
    assert_eq!(all.body["totalCount"], 9);
    assert_eq!(s.get("/deviceprofile/all?labels=thermo").await.body["totalCount"], 1);
    let basic = s.get("/deviceprofile/basicinfo/all?limit=100").await;
    assert_eq!(basic.status, 200);
    assert_eq!(basic.body["totalCount"], 9);
    let first = &basic.body["profiles"][0];
    assert!(first["name"].is_string() && is_uuid(&first["id"]), "{first}");
    assert!(first.get("deviceResources").is_none(), "basic info only: {first}");

    // PATCH basicinfo.
    let a = s
        .patch(
            "/deviceprofile/basicinfo",
            &json!([
                { "apiVersion": "v3", "requestId": "b1",
                  "basicinfo": { "name": "p-json", "manufacturer": "Other", "labels": ["x", "y"] } },
                { "apiVersion": "v3", "requestId": "b2", "basicinfo": { "name": "ghost", "model": "m" } },
            ]),
        )
        .await;
    assert_items(&a, &[200, 404]);
    let p = s.get("/deviceprofile/name/p-json").await.body["profile"].clone();
    assert_eq!(p["manufacturer"], "Other");
    assert_eq!(p["labels"], json!(["x", "y"]));
    assert_eq!(p["deviceResources"].as_array().unwrap().len(), 2, "resources kept");

    // Resources.
    let res = json!({ "name": "Humidity", "description": "rel.",
                      "properties": { "valueType": "Float64", "readWrite": "RW", "units": "%" } });
    let add = |r: Value, profile: &str| json!([{ "apiVersion": "v3", "requestId": "r", "profileName": profile, "resource": r }]);
    assert_items(&s.post("/deviceprofile/resource", &add(res.clone(), "p-json")).await, &[201]);
    assert_items(&s.post("/deviceprofile/resource", &add(res.clone(), "p-json")).await, &[409]);
    assert_items(&s.post("/deviceprofile/resource", &add(res, "ghost")).await, &[404]);
    let a = s
        .patch(
            "/deviceprofile/resource",
            &json!([{ "apiVersion": "v3", "profileName": "p-json",
                      "resource": { "name": "Humidity", "description": "relative humidity", "isHidden": true } }]),
        )
        .await;
    assert_items(&a, &[200]);
    let r = s.get("/deviceresource/profile/p-json/resource/Humidity").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["statusCode"], 200);
    assert_eq!(r.body["resource"]["description"], "relative humidity");
    assert_eq!(r.body["resource"]["isHidden"], true);
    assert_eq!(r.body["resource"]["properties"]["valueType"], "Float64");
    assert_error(&s.get("/deviceresource/profile/p-json/resource/Nope").await, 404);
    assert_error(&s.get("/deviceresource/profile/ghost/resource/Humidity").await, 404);

    // Commands.
    let cmd = json!([{ "apiVersion": "v3", "requestId": "c", "profileName": "p-json",
        "deviceCommand": { "name": "Climate", "readWrite": "RW",
                           "resourceOperations": [{ "deviceResource": "Humidity" }] } }]);
    assert_items(&s.post("/deviceprofile/deviceCommand", &cmd).await, &[201]);
    assert_items(&s.post("/deviceprofile/deviceCommand", &cmd).await, &[409]);
    let a = s
        .patch(
            "/deviceprofile/deviceCommand",
            &json!([{ "apiVersion": "v3", "profileName": "p-json",
                      "deviceCommand": { "name": "Climate", "isHidden": true } },
                    { "apiVersion": "v3", "profileName": "p-json",
                      "deviceCommand": { "name": "Nope", "isHidden": true } }]),
        )
        .await;
    assert_items(&a, &[200, 404]);
    let p = s.get("/deviceprofile/name/p-json").await.body["profile"].clone();
    let climate = p["deviceCommands"].as_array().unwrap().iter().find(|c| c["name"] == "Climate").unwrap().clone();
    assert_eq!(climate["isHidden"], true);
    // A resource a command uses cannot go; the command can, then the resource.
    assert_error(&s.delete("/deviceprofile/name/p-json/resource/Humidity").await, 409);
    assert_eq!(s.delete("/deviceprofile/name/p-json/deviceCommand/Climate").await.status, 200);
    assert_error(&s.delete("/deviceprofile/name/p-json/deviceCommand/Climate").await, 404);
    assert_eq!(s.delete("/deviceprofile/name/p-json/resource/Humidity").await.status, 200);
    assert_error(&s.delete("/deviceprofile/name/p-json/resource/Humidity").await, 404);

    // Tags.
    let a = s
        .patch(
            "/deviceprofile/name/p-json/tags",
            &json!({ "apiVersion": "v3", "requestId": "t1",
                     "deviceResources": [{ "name": "Temperature", "tags": { "room": "lab" } }],
                     "deviceCommands": [{ "name": "Both", "tags": { "group": 7 } }] }),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["requestId"], "t1");
    let p = s.get("/deviceprofile/name/p-json").await.body["profile"].clone();
    assert_eq!(p["deviceResources"][0]["tags"], json!({ "room": "lab" }));
    assert_eq!(p["deviceCommands"][0]["tags"], json!({ "group": 7 }));
    let bad_tag = s
        .patch(
            "/deviceprofile/name/p-json/tags",
            &json!({ "apiVersion": "v3", "deviceResources": [{ "name": "Nope", "tags": { "a": 1 } }] }),
        )
        .await;
    assert_error(&bad_tag, 404);

    // Delete.
    assert_eq!(s.delete("/deviceprofile/name/p-yaml").await.status, 200);
    assert_error(&s.get("/deviceprofile/name/p-yaml").await, 404);
    assert_error(&s.delete("/deviceprofile/name/p-yaml").await, 404);
}

// ---------------------------------------------------------------------------------------------
// Devices

on_both_backends!(device_flow:
    devices_are_checked_against_services_and_profiles_and_form_trees_on_sqlite,
    devices_are_checked_against_services_and_profiles_and_form_trees_on_redis);

async fn device_flow(s: &mut Server) {
    add_service(s, "svc").await;
    add_service(s, "svc-2").await;
    add_profile(s, profile("prof")).await;

    // References and auto events.
    let mut bad_source = device("d-bad", "svc", "prof");
    bad_source["autoEvents"] = json!([{ "interval": "1s", "sourceName": "Nope" }]);
    let mut write_only = device("d-wo", "svc", "prof");
    write_only["autoEvents"] = json!([{ "interval": "1s", "sourceName": "Reset" }]);
    let a = s
        .post(
            "/device",
            &json!([
                { "apiVersion": "v3", "requestId": "1", "device": device("d-x", "ghost-svc", "prof") },
                { "apiVersion": "v3", "requestId": "2", "device": device("d-y", "svc", "ghost-prof") },
                { "apiVersion": "v3", "requestId": "3", "device": bad_source },
                { "apiVersion": "v3", "requestId": "4", "device": write_only },
            ]),
        )
        .await;
    assert_items(&a, &[404, 404, 400, 400]);
    assert!(a.item(0)["message"].as_str().unwrap().contains("ghost-svc"), "{:?}", a.body);
    assert!(a.item(1)["message"].as_str().unwrap().contains("ghost-prof"), "{:?}", a.body);
    for i in [2, 3] {
        let m = a.item(i)["message"].as_str().unwrap();
        assert!(m.contains("device.autoEvents[0].sourceName"), "{m}");
    }
    assert_eq!(s.get("/device/all").await.body["totalCount"], 0, "nothing written");

    // A tree: gw ← c1 ← g1, gw ← c2.
    let mut gw = device("gw", "svc", "prof");
    gw["labels"] = json!(["gateway"]);
    gw["autoEvents"] = json!([{ "interval": "10s", "onChange": true, "sourceName": "Temperature" },
                              { "interval": "1m", "sourceName": "Both" }]);
    let gw_id = add_device(s, gw).await;
    let mut c1 = device("c1", "svc", "prof");
    c1["parent"] = json!("gw");
    c1["labels"] = json!(["child"]);
    add_device(s, c1).await;
    let mut c2 = device("c2", "svc-2", "prof");
    c2["parent"] = json!("gw");
    let c2_id = add_device(s, c2).await;
    let mut g1 = device("g1", "svc", "prof");
    g1["parent"] = json!("c1");
    g1["labels"] = json!(["child"]);
    let g1_id = add_device(s, g1).await;
    let mut orphan = device("orphan", "svc", "prof");
    orphan["parent"] = json!("nobody");
    assert_items(&s.post("/device", &one("device", "", orphan)).await, &[404]);

    let by_name = s.get("/device/name/gw").await;
    assert_eq!(by_name.status, 200);
    let d = &by_name.body["device"];
    assert_eq!(d["id"], gw_id.as_str());
    assert_eq!(d["serviceName"], "svc");
    assert_eq!(d["profileName"], "prof");
    assert_eq!(d["adminState"], "UNLOCKED");
    assert_eq!(d["operatingState"], "UP");
    assert_eq!(d["protocols"], json!({ "other": { "Address": "10.0.0.1" } }));
    assert_eq!(d["autoEvents"][0]["sourceName"], "Temperature");
    assert_eq!(d["autoEvents"][0]["interval"], "10s");
    assert_eq!(d["autoEvents"][0]["onChange"], true);
    assert!(d["created"].as_i64().unwrap() > 0);
    let by_id = s.get(&format!("/device/id/{gw_id}")).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body["device"], *d);
    assert_error(&s.get(&format!("/device/id/{}", uuid::Uuid::new_v4())).await, 404);
    let check = s.get("/device/check/name/gw").await;
    assert_eq!(check.status, 200);
    assert_eq!(check.body["statusCode"], 200);
    assert_error(&s.get("/device/check/name/nope").await, 404);

    assert_eq!(s.get("/device/profile/name/prof").await.body["totalCount"], 4);
    let by_svc = s.get("/device/service/name/svc-2").await;
    assert_eq!(by_svc.body["totalCount"], 1);
    assert_eq!(by_svc.body["devices"][0]["name"], "c2");
    assert_eq!(s.get("/device/service/name/ghost").await.body["totalCount"], 0);
    let all = s.get("/device/all").await;
    assert_eq!(all.body["totalCount"], 4);
    assert_eq!(all.body["devices"].as_array().unwrap().len(), 4);
    let labelled = s.get("/device/all?labels=child").await;
    assert_eq!(labelled.body["totalCount"], 2);
    assert_eq!(s.get("/device/all?labels=gateway,child").await.body["totalCount"], 3);

    let names = |a: &common::Answer| {
        let mut n: Vec<String> =
            a.body["devices"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect();
        n.sort();
        n
    };
    let all_below = s.get("/device/all?descendantsOf=gw").await;
    assert_eq!(all_below.status, 200, "{:?}", all_below.body);
    assert_eq!(all_below.body["totalCount"], 3);
    assert_eq!(names(&all_below), ["c1", "c2", "g1"]);
    let one_level = s.get("/device/all?descendantsOf=gw&maxLevels=1").await;
    assert_eq!(names(&one_level), ["c1", "c2"]);
    let labelled_below = s.get("/device/all?descendantsOf=gw&labels=child").await;
    assert_eq!(names(&labelled_below), ["c1", "g1"]);
    assert_eq!(names(&s.get("/device/all?descendantsOf=c1").await), ["g1"]);
    // As EdgeX: an unknown root has no descendants.
    assert_eq!(s.get("/device/all?descendantsOf=nobody").await.body["totalCount"], 0);

    // Adding again: 409, unless forced, which replaces keeping the id.
    let mut again = device("c2", "svc-2", "prof");
    again["parent"] = json!("gw");
    again["description"] = json!("replaced");
    assert_items(&s.post("/device", &one("device", "", again.clone())).await, &[409]);
    let forced = s.post("/device?force=true", &one("device", "f", again)).await;
    assert_items(&forced, &[201]);
    assert_eq!(forced.item(0)["id"], c2_id.as_str());
    assert_eq!(forced.item(0)["requestId"], "f");
    let c2 = s.get("/device/name/c2").await.body["device"].clone();
    assert_eq!(c2["description"], "replaced");
    assert_eq!(c2["id"], c2_id.as_str());
    assert_eq!(s.get("/device/all").await.body["totalCount"], 4);

    // PATCH.
    let a = s
        .patch(
            "/device",
            &json!([
                { "apiVersion": "v3", "requestId": "p1", "device": { "name": "c2", "adminState": "LOCKED" } },
                { "apiVersion": "v3", "requestId": "p2", "device": { "id": g1_id, "name": "g1-renamed" } },
                { "apiVersion": "v3", "requestId": "p3", "device": { "name": "ghost", "adminState": "LOCKED" } },
                { "apiVersion": "v3", "requestId": "p4", "device": { "name": "c1", "serviceName": "ghost" } },
            ]),
        )
        .await;
    assert_items(&a, &[200, 200, 404, 404]);
    assert_eq!(s.get("/device/name/c2").await.body["device"]["adminState"], "LOCKED");
    let renamed = s.get("/device/name/g1-renamed").await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["device"]["id"], g1_id.as_str());
    assert_error(&s.get("/device/name/g1").await, 404);
    assert_eq!(s.get("/device/name/c1").await.body["device"]["serviceName"], "svc");

    // What is in use cannot be deleted.
    assert_error(&s.delete("/deviceservice/name/svc").await, 409);
    assert_error(&s.delete("/deviceprofile/name/prof").await, 409);
    assert_error(&s.delete("/device/name/c1").await, 409);
    assert_error(&s.delete("/device/name/gw").await, 409);
    let in_use = s.delete("/deviceprofile/name/prof/resource/Temperature").await;
    assert_error(&in_use, 409);

    // Delete by name and by id.
    assert_eq!(s.delete("/device/name/g1-renamed").await.status, 200);
    assert_error(&s.delete("/device/name/g1-renamed").await, 404);
    assert_eq!(s.delete(&format!("/device/id/{c2_id}")).await.status, 200);
    assert_error(&s.delete(&format!("/device/id/{c2_id}")).await, 404);
    assert_eq!(s.delete("/device/name/c1").await.status, 200);
    assert_eq!(s.delete("/device/name/gw").await.status, 200);
    assert_eq!(s.get("/device/all").await.body["totalCount"], 0);
    assert_eq!(s.delete("/deviceservice/name/svc").await.status, 200);
    assert_eq!(s.delete("/deviceprofile/name/prof").await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// Provision watchers

on_both_backends!(provision_watcher_flow:
    provision_watchers_are_added_queried_updated_and_deleted_on_sqlite,
    provision_watchers_are_added_queried_updated_and_deleted_on_redis);

fn watcher(name: &str, service: &str, profile: &str) -> Value {
    json!({
        "name": name,
        "serviceName": service,
        "labels": ["w"],
        "identifiers": { "address": "10.0.0.*" },
        "blockingIdentifiers": { "port": ["22"] },
        "adminState": "UNLOCKED",
        "discoveredDevice": { "profileName": profile, "adminState": "UNLOCKED" }
    })
}

async fn provision_watcher_flow(s: &mut Server) {
    add_service(s, "svc").await;
    add_profile(s, profile("prof")).await;
    add_profile(s, profile("prof-2")).await;

    let a = s
        .post(
            "/provisionwatcher",
            &json!([
                { "apiVersion": "v3", "requestId": "1", "provisionWatcher": watcher("w1", "svc", "prof") },
                { "apiVersion": "v3", "requestId": "2", "provisionwatcher": watcher("w2", "svc", "prof-2") },
                { "apiVersion": "v3", "requestId": "3", "provisionWatcher": watcher("w1", "svc", "prof") },
                { "apiVersion": "v3", "requestId": "4", "provisionWatcher": watcher("w3", "ghost", "prof") },
                { "apiVersion": "v3", "requestId": "5", "provisionWatcher": watcher("w4", "svc", "ghost") },
            ]),
        )
        .await;
    assert_items(&a, &[201, 201, 409, 404, 404]);
    let w1_id = a.item(0)["id"].as_str().unwrap().to_owned();

    let g = s.get("/provisionwatcher/name/w1").await;
    assert_eq!(g.status, 200);
    let w = &g.body["provisionWatcher"];
    assert_eq!(w["id"], w1_id.as_str());
    assert_eq!(w["serviceName"], "svc");
    assert_eq!(w["identifiers"], json!({ "address": "10.0.0.*" }));
    assert_eq!(w["blockingIdentifiers"], json!({ "port": ["22"] }));
    assert_eq!(w["discoveredDevice"]["profileName"], "prof");
    assert_error(&s.get("/provisionwatcher/name/ghost").await, 404);

    let all = s.get("/provisionwatcher/all").await;
    assert_eq!(all.body["totalCount"], 2);
    assert_eq!(all.body["provisionWatchers"].as_array().unwrap().len(), 2);
    assert_eq!(s.get("/provisionwatcher/all?labels=w").await.body["totalCount"], 2);
    assert_eq!(s.get("/provisionwatcher/service/name/svc").await.body["totalCount"], 2);
    let by_profile = s.get("/provisionwatcher/profile/name/prof-2").await;
    assert_eq!(by_profile.body["totalCount"], 1);
    assert_eq!(by_profile.body["provisionWatchers"][0]["name"], "w2");

    let a = s
        .patch(
            "/provisionwatcher",
            &json!([
                { "apiVersion": "v3", "provisionWatcher": { "name": "w1", "adminState": "LOCKED",
                  "discoveredDevice": { "profileName": "prof-2" } } },
                { "apiVersion": "v3", "provisionwatcher": { "id": w1_id, "labels": ["changed"] } },
                { "apiVersion": "v3", "provisionWatcher": { "name": "ghost", "adminState": "LOCKED" } },
            ]),
        )
        .await;
    assert_items(&a, &[200, 200, 404]);
    let w = s.get("/provisionwatcher/name/w1").await.body["provisionWatcher"].clone();
    assert_eq!(w["adminState"], "LOCKED");
    assert_eq!(w["labels"], json!(["changed"]));
    assert_eq!(w["discoveredDevice"]["profileName"], "prof-2");
    assert_eq!(w["discoveredDevice"]["adminState"], "UNLOCKED", "untouched fields kept");
    assert_eq!(s.get("/provisionwatcher/profile/name/prof-2").await.body["totalCount"], 2);

    assert_error(&s.delete("/deviceprofile/name/prof-2").await, 409);
    assert_error(&s.delete("/deviceservice/name/svc").await, 409);
    assert_eq!(s.delete("/provisionwatcher/name/w1").await.status, 200);
    assert_error(&s.delete("/provisionwatcher/name/w1").await, 404);
    assert_eq!(s.get("/provisionwatcher/all").await.body["totalCount"], 1);
}

// ---------------------------------------------------------------------------------------------
// Units of measure, system events, EdgeX's own examples

#[tokio::test]
async fn units_of_measure_are_served_in_edgex_shape() {
    let s = common::start().await;
    let a = s.get("/uom").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["apiVersion"], "v3");
    assert_eq!(a.body["statusCode"], 200);
    let uom = &a.body["uom"];
    assert!(uom["source"].is_string(), "{uom}");
    let temp = &uom["units"]["temperature"];
    assert!(temp["source"].is_string(), "{uom}");
    assert!(temp["values"].as_array().unwrap().contains(&json!("C")), "{uom}");
}

#[tokio::test]
async fn every_change_is_announced_as_an_edgex_system_event() {
    let mut s = common::start().await;
    add_service(&s, "svc").await;
    add_profile(&s, profile("prof")).await;
    let id = add_device(&s, device("d1", "svc", "prof")).await;
    let patch = json!([{ "apiVersion": "v3", "device": { "name": "d1", "adminState": "LOCKED" } }]);
    assert_items(&s.patch("/device", &patch).await, &[200]);
    assert_eq!(s.delete("/device/name/d1").await.status, 200);
    let w = watcher("w1", "svc", "prof");
    assert_items(&s.post("/provisionwatcher", &one("provisionWatcher", "", w)).await, &[201]);

    let events = s.take_events();
    let summary: Vec<(String, String, String)> =
        events.iter().map(|e| (e.event_type.clone(), e.action.clone(), e.owner.clone())).collect();
    let want = [
        ("deviceservice", "add", "svc"),
        ("deviceprofile", "add", ""),
        ("device", "add", "svc"),
        ("device", "update", "svc"),
        ("device", "delete", "svc"),
        ("provisionwatcher", "add", "svc"),
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(summary, want);
    for e in &events {
        assert_eq!(e.source, "core-metadata");
        assert_eq!(e.api_version, "v3");
        assert!(e.timestamp > 0);
    }
    let update = serde_json::to_value(&events[3]).unwrap();
    assert_eq!(update["type"], "device");
    assert_eq!(update["action"], "update");
    assert_eq!(update["source"], "core-metadata");
    assert_eq!(update["owner"], "svc");
    assert_eq!(update["details"]["name"], "d1");
    assert_eq!(update["details"]["id"], id.as_str());
    assert_eq!(update["details"]["adminState"], "LOCKED");
    assert_eq!(serde_json::to_value(&events[1]).unwrap()["details"]["name"], "prof");
    assert_eq!(serde_json::to_value(&events[4]).unwrap()["details"]["adminState"], "LOCKED");
}

#[tokio::test]
async fn failed_requests_announce_nothing() {
    let mut s = common::start().await;
    add_service(&s, "svc").await;
    s.take_events();
    assert_items(&s.post("/deviceservice", &one("service", "", service("svc"))).await, &[409]);
    assert_items(&s.post("/device", &one("device", "", device("d", "svc", "ghost"))).await, &[404]);
    assert_error(&s.delete("/deviceservice/name/ghost").await, 404);
    assert!(s.take_events().is_empty());
}

#[tokio::test]
async fn edgex_example_requests_get_edgex_documented_statuses() {
    let s = common::start().await;

    // AddDeviceServiceRequest → 207 with 201 and the request id echoed.
    let ex = edgex_example("AddDeviceServiceRequest");
    let a = s.post("/deviceservice", &ex).await;
    assert_items(&a, &[201]);
    assert_eq!(a.item(0)["requestId"], ex[0]["requestId"]);

    // AddDeviceProfileRequest → 201; the resource and command examples name what it already has.
    let ex = edgex_example("AddDeviceProfileRequest");
    let a = s.post("/deviceprofile", &ex).await;
    assert_items(&a, &[201]);
    assert_eq!(a.item(0)["requestId"], ex[0]["requestId"]);
    let p = s.get("/deviceprofile/name/Simple-Device-Profile").await.body["profile"].clone();
    assert_eq!(p["deviceCommands"][0]["resourceOperations"][0]["defaultValue"], "false");
    assert_items(&s.post("/deviceprofile/deviceCommand", &edgex_example("AddDeviceCommandRequest")).await, &[409]);
    assert_items(&s.post("/deviceprofile/resource", &edgex_example("AddDeviceResourceRequest")).await, &[409]);
    assert_eq!(s.delete("/deviceprofile/name/Simple-Device-Profile/deviceCommand/Switch").await.status, 200);
    assert_eq!(s.delete("/deviceprofile/name/Simple-Device-Profile/resource/SwitchButton").await.status, 200);
    assert_items(&s.post("/deviceprofile/resource", &edgex_example("AddDeviceResourceRequest")).await, &[201]);
    assert_items(&s.post("/deviceprofile/deviceCommand", &edgex_example("AddDeviceCommandRequest")).await, &[201]);

    // AddDeviceRequest names service device-modbus and profile Google-Home-profile.
    let ex = edgex_example("AddDeviceRequest");
    assert_items(&s.post("/device", &ex).await, &[404]);
    add_service(&s, "device-modbus").await;
    let mut google = profile("Google-Home-profile");
    google["deviceResources"][0]["name"] = json!("CurrentHumidity");
    google["deviceCommands"][0]["resourceOperations"][0]["deviceResource"] = json!("CurrentHumidity");
    add_profile(&s, google).await;
    // The UpdateDeviceRequest example names two devices by id: create them with those ids.
    let update = edgex_example("UpdateDeviceRequest");
    let mut add = ex.clone();
    add[0]["device"]["id"] = update[0]["device"]["id"].clone();
    let a = s.post("/device", &add).await;
    assert_items(&a, &[201]);
    assert_eq!(a.item(0)["id"], update[0]["device"]["id"]);
    let d = s.get("/device/name/AWS-IOT-Button1").await.body["device"].clone();
    assert_eq!(d["location"], "{lat:45.45,long:47.80}");
    assert_eq!(d["protocols"]["modbus-tcp"]["Port"], 502);
    assert_eq!(d["tags"], ex[0]["device"]["tags"]);
    assert_eq!(d["properties"], ex[0]["device"]["properties"]);
    assert_eq!(d["autoEvents"][0]["onChangeThreshold"], 0.01);
    let mut second = device("AWS-IOT-Button2", "device-modbus", "Google-Home-profile");
    second["id"] = update[1]["device"]["id"].clone();
    add_device(&s, second).await;
    let a = s.patch("/device", &update).await;
    assert_items(&a, &[200, 200]);
    let d = s.get("/device/name/AWS-IOT-Button1").await.body["device"].clone();
    assert_eq!(d["operatingState"], "DOWN");
    assert_eq!(d["labels"], json!(["home"]));
    assert_eq!(d["autoEvents"][0]["interval"], "100ms");
    assert_eq!(s.get("/device/name/AWS-IOT-Button2").await.body["device"]["adminState"], "LOCKED");

    // AddProvisionWatcherRequest: EdgeX's example is in the v2 shape (serviceName inside
    // discoveredDevice); EdgeX v3 requires the top-level serviceName and answers 400.
    let ex = edgex_example("AddProvisionWatcherRequest");
    let a = s.post("/provisionwatcher", &ex).await;
    assert_error(&a, 400);
    assert!(a.message().contains("serviceName"), "{}", a.message());
    let mut fixed = ex.clone();
    fixed[0]["provisionwatcher"]["serviceName"] = json!("device-simple");
    add_service(&s, "device-simple").await;
    add_profile(&s, profile("device-simple")).await;
    let a = s.post("/provisionwatcher", &fixed).await;
    assert_items(&a, &[201]);
    assert_eq!(a.item(0)["requestId"], ex[0]["requestId"]);
    let w = s.get("/provisionwatcher/name/Simple-Provision-Watcher").await.body["provisionWatcher"].clone();
    assert_eq!(w["blockingIdentifiers"], json!({ "port": ["397", "398", "399"] }));
}

#[tokio::test]
async fn list_answers_match_edgex_example_shapes() {
    let s = common::start().await;
    for (name, path, field) in [
        ("GetAllDevicesResponse", "/device/all", "devices"),
        ("GetAllDeviceProfilesResponse", "/deviceprofile/all", "profiles"),
        ("GetAllDeviceProfileBasicInfosResponse", "/deviceprofile/basicinfo/all", "profiles"),
        ("GetAllProvisionWatchersResponse", "/provisionwatcher/all", "provisionWatchers"),
    ] {
        let ex = edgex_example(name);
        assert!(ex[field].is_array(), "{name}");
        let a = s.get(path).await;
        assert_eq!(a.status, 200);
        let mut want: Vec<&str> = ex.as_object().unwrap().keys().map(String::as_str).collect();
        want.retain(|k| *k != "requestId");
        want.sort();
        let mut got: Vec<&str> = a.body.as_object().unwrap().keys().map(String::as_str).collect();
        got.sort();
        assert_eq!(got, want, "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// References stay consistent

#[tokio::test]
async fn a_device_cannot_become_its_own_ancestor() {
    let s = common::start().await;
    add_service(&s, "svc").await;
    add_profile(&s, profile("prof")).await;
    add_device(&s, device("a", "svc", "prof")).await;
    let mut b = device("b", "svc", "prof");
    b["parent"] = json!("a");
    add_device(&s, b).await;
    let mut c = device("c", "svc", "prof");
    c["parent"] = json!("b");
    add_device(&s, c).await;

    for (name, parent) in [("a", "c"), ("a", "b"), ("b", "b")] {
        let patch = json!([{ "apiVersion": "v3", "device": { "name": name, "parent": parent } }]);
        let a = s.patch("/device", &patch).await;
        let status = if a.status == 207 { a.item(0)["statusCode"].as_u64().unwrap() } else { u64::from(a.status) };
        assert_eq!(status, 400, "{name} under {parent}: {:?}", a.body);
    }
    assert!(s.get("/device/name/a").await.body["device"].get("parent").is_none());
    let below = s.get("/device/all?descendantsOf=a").await;
    assert_eq!(below.status, 200);
    assert_eq!(below.body["totalCount"], 2);
}

#[tokio::test]
async fn names_others_refer_to_cannot_change() {
    let s = common::start().await;
    let svc_id = add_service(&s, "svc").await;
    add_profile(&s, profile("prof")).await;
    let gw_id = add_device(&s, device("gw", "svc", "prof")).await;
    let mut child = device("child", "svc", "prof");
    child["parent"] = json!("gw");
    add_device(&s, child).await;

    let a =
        s.patch("/deviceservice", &json!([{ "apiVersion": "v3", "service": { "id": svc_id, "name": "svc2" } }])).await;
    assert_items(&a, &[409]);
    let a = s.patch("/device", &json!([{ "apiVersion": "v3", "device": { "id": gw_id, "name": "gw2" } }])).await;
    assert_items(&a, &[409]);
    let a = s
        .patch(
            "/deviceprofile/basicinfo",
            &json!([{ "apiVersion": "v3", "basicinfo": {
            "id": s.get("/deviceprofile/name/prof").await.body["profile"]["id"], "name": "prof2" } }]),
        )
        .await;
    assert_items(&a, &[409]);
    // Renaming onto an existing name is a duplicate.
    add_service(&s, "other").await;
    let a =
        s.patch("/deviceservice", &json!([{ "apiVersion": "v3", "service": { "id": svc_id, "name": "other" } }])).await;
    assert_items(&a, &[409]);
    assert_eq!(s.get("/device/name/child").await.body["device"]["parent"], "gw");
}

#[tokio::test]
async fn a_profile_change_that_breaks_a_device_is_refused() {
    let s = common::start().await;
    add_service(&s, "svc").await;
    add_profile(&s, profile("prof")).await;
    let mut d = device("d1", "svc", "prof");
    d["autoEvents"] =
        json!([{ "interval": "1s", "sourceName": "Temperature" }, { "interval": "1s", "sourceName": "Both" }]);
    add_device(&s, d).await;

    // PUT without the resource the device reads.
    let mut smaller = profile("prof");
    smaller["deviceResources"] = json!([{ "name": "Reset", "properties": { "valueType": "Bool", "readWrite": "W" } }]);
    smaller["deviceCommands"] = json!([]);
    assert_items(&s.put("/deviceprofile", &one("profile", "", smaller)).await, &[409]);
    // The command the device reads cannot go either.
    assert_error(&s.delete("/deviceprofile/name/prof/deviceCommand/Both").await, 409);
    // A device cannot be moved to a source it cannot read.
    let patch = json!([{ "apiVersion": "v3", "device": { "name": "d1",
        "autoEvents": [{ "interval": "1s", "sourceName": "Reset" }] } }]);
    let a = s.patch("/device", &patch).await;
    assert_items(&a, &[400]);
    assert!(a.item(0)["message"].as_str().unwrap().contains("device.autoEvents[0].sourceName"), "{:?}", a.body);
    let p = s.get("/deviceprofile/name/prof").await.body["profile"].clone();
    assert_eq!(p["deviceResources"].as_array().unwrap().len(), 2);
    assert_eq!(p["deviceCommands"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn paging_at_the_edges_answers_as_edgex_does() {
    let s = common::start().await;
    // No data: any offset is an empty page.
    let a = s.get("/device/all?offset=5").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["devices"], json!([]));
    add_service(&s, "s1").await;
    add_service(&s, "s2").await;
    let at_end = s.get("/deviceservice/all?offset=2").await;
    assert_eq!(at_end.status, 200);
    assert_eq!(at_end.body["services"], json!([]));
    assert_eq!(at_end.body["totalCount"], 2);
    let zero = s.get("/deviceservice/all?limit=0").await;
    assert_eq!(zero.status, 200);
    assert_eq!(zero.body["totalCount"], 2);
    let max = s.get("/deviceservice/all?limit=1024").await;
    assert_eq!(max.status, 200);
    assert_error(&s.get("/deviceservice/all?limit=1025").await, 400);
}

// ---------------------------------------------------------------------------------------------
// Linked device count (EdgeX 4)

on_both_backends!(linked_device_count_flow:
    profiles_report_how_many_devices_use_them_on_sqlite,
    profiles_report_how_many_devices_use_them_on_redis);

async fn linked_device_count_flow(s: &mut Server) {
    add_service(s, "svc").await;
    add_profile(s, profile("used")).await;
    add_profile(s, profile("unused")).await;
    add_device(s, device("d1", "svc", "used")).await;
    add_device(s, device("d2", "svc", "used")).await;

    let a = s.get("/deviceprofile/name/used").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["profile"]["linkedDeviceCount"], 2, "{}", a.body);
    let a = s.get("/deviceprofile/all").await;
    let mut counts: Vec<_> = a.body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].clone(), p["linkedDeviceCount"].clone()))
        .collect();
    counts.sort_by_key(|(name, _)| name.to_string());
    assert_eq!(counts, vec![(json!("unused"), json!(0)), (json!("used"), json!(2))]);
    let a = s.get("/deviceprofile/basicinfo/all?labels=thermo").await;
    let used = a.body["profiles"].as_array().unwrap().iter().find(|p| p["name"] == "used").unwrap().clone();
    assert_eq!(used["linkedDeviceCount"], 2, "{}", a.body);

    // A count sent in is ignored, never stored.
    let mut p = profile("used");
    p["linkedDeviceCount"] = json!(99);
    let a = s.put("/deviceprofile", &one("profile", "", p)).await;
    assert_items(&a, &[200]);
    let a = s.get("/deviceprofile/name/used").await;
    assert_eq!(a.body["profile"]["linkedDeviceCount"], 2, "{}", a.body);
}
