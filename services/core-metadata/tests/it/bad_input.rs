//! Bad input gets a clear 4xx in EdgeX's error shape, naming the field, and loses or half-writes
//! nothing; the server never panics.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, device, one, profile, service, Answer, Server, MAX_REQUEST_SIZE};

/// Asserts EdgeX's error shape `{apiVersion, statusCode, message}` with `status`.
#[track_caller]
fn assert_error(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.body["apiVersion"], "v3", "{:?}", a.body);
    assert_eq!(a.body["statusCode"], status, "{:?}", a.body);
    assert!(!a.message().is_empty(), "{:?}", a.body);
    assert!(a.content_type.starts_with("application/json"), "{}", a.content_type);
}

/// Asserts a 400 whose message names `field`.
#[track_caller]
fn assert_names(a: &Answer, field: &str) {
    assert_error(a, 400);
    assert!(a.message().contains(field), "message does not name {field}: {}", a.message());
}

async fn setup(s: &Server) {
    let a = s.post("/deviceservice", &one("service", "", service("svc"))).await;
    assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
    let a = s.post("/deviceprofile", &one("profile", "", profile("prof"))).await;
    assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
}

async fn ping(s: &Server) {
    let a = s.get("/ping").await;
    assert_eq!(a.status, 200, "the server still answers");
}

async fn json_raw(s: &Server, method: Method, path: &str, body: impl Into<Vec<u8>>) -> Answer {
    s.raw(method, path, "application/json", body.into()).await
}

#[tokio::test]
async fn malformed_json_is_a_400_in_edgex_shape() {
    let s = common::start().await;
    for path in ["/deviceservice", "/deviceprofile", "/device", "/provisionwatcher"] {
        for body in ["{not json", "[{\"apiVersion\":\"v3\",", "", "null", "[1, 2]"] {
            let a = json_raw(&s, Method::POST, path, body).await;
            assert_error(&a, 400);
        }
    }
    let a = json_raw(&s, Method::PATCH, "/deviceprofile/name/prof/tags", "{oops").await;
    assert_error(&a, 400);
    ping(&s).await;
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_named_with_its_item() {
    let s = common::start().await;
    setup(&s).await;
    let mut d = device("d1", "svc", "prof");
    d["adminState"] = json!(5);
    let a = s.post("/device", &one("device", "", d)).await;
    assert_names(&a, "[0].device.adminState");
    let mut d = device("d1", "svc", "prof");
    d["labels"] = json!("not-a-list");
    let ok = one("device", "", device("d0", "svc", "prof"))[0].clone();
    let a = s.post("/device", &json!([ok, { "apiVersion": "v3", "device": d }])).await;
    assert_names(&a, "[1].device.labels");
    let a = s.post("/deviceservice", &one("service", "", json!({ "name": 12, "adminState": "UNLOCKED" }))).await;
    assert_names(&a, "[0].service.name");
    assert_eq!(s.get("/device/all").await.body["totalCount"], 0);
}

#[tokio::test]
async fn unknown_enum_values_are_rejected_naming_the_field() {
    let s = common::start().await;
    setup(&s).await;
    let mut d = device("d1", "svc", "prof");
    d["adminState"] = json!("SLEEPY");
    assert_names(&s.post("/device", &one("device", "", d)).await, "[0].device.adminState");
    let mut d = device("d1", "svc", "prof");
    d["operatingState"] = json!("SIDEWAYS");
    assert_names(&s.post("/device", &one("device", "", d)).await, "[0].device.operatingState");
    let mut p = profile("p2");
    p["deviceResources"][0]["properties"]["valueType"] = json!("Complex128");
    assert_names(&s.post("/deviceprofile", &one("profile", "", p)).await, "valueType");
    let mut p = profile("p2");
    p["deviceResources"][0]["properties"]["readWrite"] = json!("X");
    assert_names(&s.post("/deviceprofile", &one("profile", "", p)).await, "readWrite");
    let patch = json!([{ "apiVersion": "v3", "service": { "name": "svc", "adminState": "HALF" } }]);
    assert_names(&s.patch("/deviceservice", &patch).await, "[0].service.adminState");
}

#[tokio::test]
async fn bad_names_are_rejected_naming_the_field() {
    let s = common::start().await;
    setup(&s).await;
    let long = "x".repeat(257);
    let mut bad: Vec<String> = vec!["".into(), "   ".into(), long];
    bad.extend(["a/b", "a#b", "a+b", "a$b"].map(String::from));
    for name in &bad {
        let a = s.post("/deviceservice", &one("service", "", service(name))).await;
        assert_names(&a, "[0].service.name");
        let a = s.post("/deviceprofile", &one("profile", "", profile(name))).await;
        assert_names(&a, "[0].profile.name");
        let a = s.post("/device", &one("device", "", device(name, "svc", "prof"))).await;
        assert_names(&a, "[0].device.name");
        let w = json!({ "name": name, "serviceName": "svc", "identifiers": { "a": "b" }, "adminState": "UNLOCKED",
                        "discoveredDevice": { "profileName": "prof", "adminState": "UNLOCKED" } });
        let a = s.post("/provisionwatcher", &one("provisionWatcher", "", w)).await;
        assert_names(&a, "[0].provisionWatcher.name");
        let patch = json!([{ "apiVersion": "v3", "device": { "name": name, "adminState": "LOCKED" } }]);
        let a = s.patch("/device", &patch).await;
        if name.trim().is_empty() {
            assert_names(&a, "[0].device");
        } else {
            assert_names(&a, "[0].device.name");
        }
    }
    // 256 bytes is still fine.
    let a = s.post("/device", &one("device", "", device(&"y".repeat(256), "svc", "prof"))).await;
    assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
    assert_eq!(s.get("/device/all").await.body["totalCount"], 1);
    assert_eq!(s.get("/deviceservice/all").await.body["totalCount"], 1);
    ping(&s).await;
}

#[tokio::test]
async fn a_missing_api_version_is_a_400() {
    let s = common::start().await;
    let body = json!([{ "service": service("svc") }]);
    assert_names(&s.post("/deviceservice", &body).await, "[0].apiVersion");
    let body = json!([{ "apiVersion": "", "service": service("svc") }]);
    assert_names(&s.post("/deviceservice", &body).await, "[0].apiVersion");
    let tags = json!({ "deviceResources": [] });
    setup(&s).await;
    assert_names(&s.patch("/deviceprofile/name/prof/tags", &tags).await, "apiVersion");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_and_writes_nothing() {
    let s = common::start().await;
    setup(&s).await;
    // A valid batch padded past the limit with a long description.
    let mut d = device("big", "svc", "prof");
    d["description"] = json!("x".repeat(10 * 1024 * 1024));
    let body = serde_json::to_vec(&one("device", "", d)).unwrap();
    assert!(body.len() > MAX_REQUEST_SIZE);
    let a = json_raw(&s, Method::POST, "/device", body).await;
    assert_error(&a, 413);
    assert_error(&s.get("/device/name/big").await, 404);
    ping(&s).await;
}

#[tokio::test]
async fn an_upload_over_the_limit_is_a_413() {
    let s = common::start().await;
    let mut yaml = b"name: huge\ndescription: \"".to_vec();
    yaml.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    yaml.extend_from_slice(b"\"\n");
    let a = s.upload(Method::POST, "/deviceprofile/uploadfile", yaml.clone()).await;
    assert_error(&a, 413);
    let a = s.raw(Method::POST, "/deviceprofile/uploadfile", "application/x-yaml", yaml).await;
    assert_error(&a, 413);
    assert_error(&s.get("/deviceprofile/name/huge").await, 404);
    ping(&s).await;
}

#[tokio::test]
async fn a_batch_endpoint_wants_an_array() {
    let s = common::start().await;
    let body = json!({ "apiVersion": "v3", "service": service("svc") });
    assert_error(&s.post("/deviceservice", &body).await, 400);
    assert_error(&s.patch("/deviceservice", &body).await, 400);
    assert_error(&s.put("/deviceprofile", &json!({ "apiVersion": "v3", "profile": profile("p") })).await, 400);
    assert_error(&s.post("/device", &json!("device")).await, 400);
    assert_eq!(s.get("/deviceservice/all").await.body["totalCount"], 0);
}

#[tokio::test]
async fn profile_uploads_that_are_not_profiles_are_a_400() {
    let s = common::start().await;
    let path = "/deviceprofile/uploadfile";
    for bad in [&b"{{{ not: [yaml"[..], b"", b"   \n", b"- just\n- a list\n", b"name: [1, 2]\n"] {
        assert_error(&s.upload(Method::POST, path, bad.to_vec()).await, 400);
        assert_error(&s.raw(Method::POST, path, "application/x-yaml", bad.to_vec()).await, 400);
    }
    // A profile that parses but breaks the rules names the field.
    let a = s.upload(Method::POST, path, b"name: \"a/b\"\n".to_vec()).await;
    assert_names(&a, "profile.name");
    // A form without a `file` field.
    let form = reqwest::multipart::Form::new().text("other", "name: p\n");
    let a = s.send(s.client.post(s.url(path)).multipart(form)).await;
    assert_names(&a, "file");
    // Not multipart at all, and not YAML.
    let a = s.raw(Method::POST, path, "image/png", b"\x89PNG".to_vec()).await;
    assert!(a.status == 400 || a.status == 415, "{:?}", a.body);
    assert_eq!(a.body["statusCode"], a.status);
    // A malformed multipart body.
    let a = s.raw(Method::POST, path, "multipart/form-data; boundary=xyz", b"garbage".to_vec()).await;
    assert_error(&a, 400);
    assert_eq!(s.get("/deviceprofile/all").await.body["totalCount"], 0);
    ping(&s).await;
}

#[tokio::test]
async fn bad_paging_parameters_are_a_400_naming_the_parameter() {
    let s = common::start().await;
    for path in [
        "/deviceservice/all",
        "/deviceprofile/all",
        "/deviceprofile/basicinfo/all",
        "/device/all",
        "/provisionwatcher/all",
        "/device/service/name/svc",
    ] {
        for (query, param) in
            [("offset=-1", "offset"), ("offset=x", "offset"), ("limit=abc", "limit"), ("limit=-2", "limit")]
        {
            let a = s.get(&format!("{path}?{query}")).await;
            assert_names(&a, param);
        }
    }
    assert_names(&s.get("/device/all?descendantsOf=x&maxLevels=-1").await, "maxLevels");
    assert_names(&s.post("/device?force=maybe", &json!([])).await, "force");
}

#[tokio::test]
async fn an_invalid_item_rejects_the_whole_batch_and_writes_nothing() {
    let s = common::start().await;
    setup(&s).await;
    let batch = json!([
        { "apiVersion": "v3", "device": device("first", "svc", "prof") },
        { "apiVersion": "v3", "device": device("bad/name", "svc", "prof") },
    ]);
    assert_names(&s.post("/device", &batch).await, "[1].device.name");
    assert_error(&s.get("/device/name/first").await, 404);

    let batch = json!([
        { "apiVersion": "v3", "service": service("s1") },
        { "apiVersion": "v3", "service": { "name": "s2", "adminState": "UNLOCKED", "baseAddress": 7 } },
    ]);
    assert_names(&s.post("/deviceservice", &batch).await, "[1].service.baseAddress");
    assert_error(&s.get("/deviceservice/name/s1").await, 404);

    let batch = json!([
        { "apiVersion": "v3", "service": { "name": "svc", "description": "changed" } },
        { "apiVersion": "v3", "service": {} },
    ]);
    assert_names(&s.patch("/deviceservice", &batch).await, "[1].service");
    assert!(s.get("/deviceservice/name/svc").await.body["service"].get("description").is_none());

    let mut p2 = profile("p2");
    p2["deviceCommands"][0]["resourceOperations"][0]["deviceResource"] = json!("Missing");
    let batch = json!([
        { "apiVersion": "v3", "profile": profile("p1") },
        { "apiVersion": "v3", "profile": p2 },
    ]);
    assert_names(&s.post("/deviceprofile", &batch).await, "[1].profile.deviceCommands[0]");
    assert_error(&s.get("/deviceprofile/name/p1").await, 404);
    assert_eq!(s.get("/device/all").await.body["totalCount"], 0);
}

#[tokio::test]
async fn an_unknown_path_is_a_404_in_edgex_shape() {
    let s = common::start().await;
    assert_error(&s.get("/nothing/here").await, 404);
    assert_error(&s.get("/device/name").await, 404);
    let a = s.send(s.client.get(s.url("").replace("/api/v3", "/api/v2/ping"))).await;
    assert_error(&a, 404);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_in_edgex_shape() {
    let s = common::start().await;
    for (method, path) in [
        (Method::PUT, "/deviceservice"),
        (Method::DELETE, "/device"),
        (Method::POST, "/device/all"),
        (Method::PUT, "/device/name/x"),
        (Method::POST, "/deviceprofile/name/x"),
        (Method::GET, "/deviceprofile/uploadfile"),
        (Method::DELETE, "/provisionwatcher/all"),
        (Method::POST, "/uom"),
        (Method::POST, "/ping"),
    ] {
        let a = s.send(s.client.request(method.clone(), s.url(path))).await;
        assert_eq!(a.status, 405, "{method} {path}: {:?}", a.body);
        assert_error(&a, 405);
    }
}

#[tokio::test]
async fn hostile_input_never_crashes_the_server() {
    let s = common::start().await;
    setup(&s).await;
    let odd: Vec<Value> = vec![
        json!([{ "apiVersion": "v3", "device": { "name": "d\u{0}x" } }]),
        json!([{ "apiVersion": "v3", "device": null }]),
        json!([[[[[[[[[[1]]]]]]]]]]),
        json!([{ "apiVersion": "v3", "device": { "id": "not-a-uuid", "name": "d" } }]),
        json!([{ "apiVersion": "v3", "device": { "name": "d", "autoEvents": [{ "interval": "-1s", "sourceName": "x" }] } }]),
        json!([{ "apiVersion": "v3", "device": { "name": "d", "parent": "d" } }]),
    ];
    for body in &odd {
        let a = s.post("/device", body).await;
        assert!((400..500).contains(&a.status), "{body}: {:?}", a.body);
        let a = s.patch("/device", body).await;
        assert!((400..500).contains(&a.status) || a.status == 207, "{body}: {:?}", a.body);
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_error(&json_raw(&s, Method::POST, "/device", deep).await, 400);
    let mut id_device = device("d-id", "svc", "prof");
    id_device["id"] = json!("not-a-uuid");
    let a = s.post("/device", &one("device", "", id_device)).await;
    assert!(a.status == 400 || a.item(0)["statusCode"] == 400, "{:?}", a.body);
    assert_error(&s.get("/device/id/not-a-uuid").await, 404);
    assert_error(&s.get("/device/name/%FF%FE").await, 404);
    assert_error(&s.delete("/device/id/%00").await, 404);
    ping(&s).await;
}

/// Found by schemathesis: `descendantsOf=` (empty) was taken for a device named '' and
/// answered 404, a status EdgeX does not document there. As EdgeX: empty means no tree query,
/// and an unknown root has no descendants.
#[tokio::test]
async fn an_empty_or_unknown_descendants_of_is_not_a_404() {
    let s = common::start().await;
    setup(&s).await;
    let a = s.post("/device", &one("device", "", device("d1", "svc", "prof"))).await;
    assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
    let a = s.get("/device/all?labels=&descendantsOf=&maxLevels=0").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["totalCount"], 1, "{:?}", a.body);
    let a = s.get("/device/all?descendantsOf=nobody").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["totalCount"], 0, "{:?}", a.body);
    assert_eq!(a.body["devices"], json!([]), "{:?}", a.body);
}

/// Found by schemathesis: the served OpenAPI document listed core-metadata's routes without
/// their `/api/v3` prefix, so a client following it reached no route. Every documented path
/// and method must reach a handler (anything but "no such route" or 405).
#[tokio::test]
async fn every_path_in_the_served_openapi_document_is_served() {
    let s = common::start().await;
    let doc = s.client.get(format!("{}/openapi.json", s.base)).send().await.unwrap();
    let doc: Value = doc.json().await.unwrap();
    let origin = s.base.trim_end_matches("/api/v3");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 30, "{}", paths.len());
    for (path, item) in paths {
        let concrete: String =
            path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.client.request(m, format!("{origin}{concrete}")).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(!body.contains("route '"), "{method} {path} reaches no route: {body}");
        }
    }
}
