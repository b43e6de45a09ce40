//! The common endpoints and middleware over real HTTP on loopback.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::FutureExt;
use oxedge_contracts::EdgeXError;
use oxedge_runtime::config::ServiceSection;
use oxedge_runtime::{correlation_id, serve, ApiResult, Common, Query};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Server {
    base: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

#[derive(serde::Deserialize)]
struct Page {
    offset: Option<u32>,
    limit: u32,
}

async fn device(path: web::Path<String>) -> ApiResult {
    Err(EdgeXError::not_found("device", &path).into())
}

async fn echo(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

async fn echo_json(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn slow() -> HttpResponse {
    tokio::time::sleep(Duration::from_millis(800)).await;
    HttpResponse::Ok().body("done")
}

async fn whoami(req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().body(correlation_id(&req))
}

async fn page(q: Query<Page>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{}:{}", q.offset.unwrap_or(0), q.limit))
}

async fn actix_page(q: web::Query<Page>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{}:{}", q.offset.unwrap_or(0), q.limit))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/device/name/{name}").get(device))
        .route("/echo", web::post().to(echo))
        .route("/echo-json", web::post().to(echo_json))
        .route("/slow", web::get().to(slow))
        .route("/whoami", web::get().to(whoami))
        .route("/page", web::get().to(page))
        .route("/actix-page", web::get().to(actix_page));
}

async fn start(common: Common) -> Server {
    let section = ServiceSection { max_request_size: 1000, workers: 1, shutdown_grace: 3, ..Default::default() };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    // Spawned, so this also proves `serve` is Send.
    let task = tokio::spawn(async move { serve(common, &section, listener, token, routes).await });
    Server { base, shutdown, task }
}

fn common() -> Common {
    Common::new("test-service", json!({"service": {"port": 1}, "database": {"password": "hunter2"}}))
        .with_version("1.2.3")
}

async fn get(url: String) -> (u16, Option<String>, Value) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = res.json().await.unwrap();
    (status, content_type, body)
}

fn assert_edgex_error(body: &Value, status: u16) {
    assert_eq!(body["apiVersion"], "v3", "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn common_endpoints_answer_in_edgex_shape() {
    let server = start(common()).await;
    let (status, content_type, body) = get(format!("{}/api/v3/ping", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body["apiVersion"], "v3");
    assert_eq!(body["serviceName"], "test-service");
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(timestamp.ends_with(" GMT") && timestamp.len() == 29 && timestamp.as_bytes()[3] == b',', "{timestamp}");

    let (status, _, body) = get(format!("{}/api/v3/version", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"apiVersion": "v3", "version": "1.2.3", "serviceName": "test-service"}));

    let (status, _, body) = get(format!("{}/api/v3/config", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"apiVersion": "v3", "serviceName": "test-service",
               "config": {"service": {"port": 1}, "database": {"password": "***"}}})
    );

    let (status, _, body) = get(format!("{}/api/v3/health", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"apiVersion": "v3", "serviceName": "test-service", "status": "UP", "checks": {}}));

    let (status, _, body) = get(format!("{}/api/v3/openapi.json", server.base)).await;
    assert_eq!(status, 200);
    for path in ["/api/v3/ping", "/api/v3/version", "/api/v3/config", "/api/v3/health", "/metrics"] {
        assert!(body["paths"].get(path).is_some(), "{path} missing from {body}");
    }
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn health_is_down_with_503_when_a_check_fails() {
    let mut common = common();
    common.add_health_check("store", || async { Ok(()) }.boxed());
    common.add_health_check("bus", || async { Err("broker unreachable".to_owned()) }.boxed());
    let server = start(common).await;
    let (status, _, body) = get(format!("{}/api/v3/health", server.base)).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"apiVersion": "v3", "serviceName": "test-service", "status": "DOWN",
               "checks": {"store": "UP", "bus": "broker unreachable"}})
    );
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn openapi_merges_the_service_document() {
    let mut common = common();
    let service_api = utoipa::openapi::OpenApiBuilder::new()
        .info(utoipa::openapi::Info::new("core-metadata", "3.0"))
        .paths(utoipa::openapi::PathsBuilder::new().path(
            "/api/v3/device/all",
            utoipa::openapi::PathItem::new(
                utoipa::openapi::HttpMethod::Get,
                utoipa::openapi::path::OperationBuilder::new().operation_id(Some("allDevices")).build(),
            ),
        ))
        .build();
    common.set_openapi(service_api);
    let server = start(common).await;
    let (_, _, body) = get(format!("{}/api/v3/openapi.json", server.base)).await;
    assert_eq!(body["info"]["title"], "core-metadata");
    assert!(body["paths"].get("/api/v3/device/all").is_some(), "{body}");
    assert!(body["paths"].get("/api/v3/ping").is_some(), "{body}");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let common = common();
    let registry = common.registry();
    {
        let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
        counter.inc_by(7);
        registry.lock().unwrap().register("things_done", "Things the service did", counter);
    }
    let server = start(common).await;
    let client = reqwest::Client::new();
    for name in ["a", "b", "c"] {
        client.get(format!("{}/api/v3/device/name/{name}", server.base)).send().await.unwrap();
    }
    client.get(format!("{}/api/v3/ping", server.base)).send().await.unwrap();
    let text = client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v3/device/name/{name}",status="404"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"http_requests_total{method="GET",route="/api/v3/ping",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"http_request_duration_seconds_count{method="GET",route="/api/v3/ping"} 1"#), "{text}");
    assert!(text.contains("things_done_total 7"), "{text}");
    assert!(!text.contains("route=\"/api/v3/device/name/a\""), "{text}");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn correlation_id_is_echoed_or_generated() {
    let server = start(common()).await;
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/api/v3/whoami", server.base))
        .header("X-Correlation-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-correlation-id"], "abc-123");
    assert_eq!(res.text().await.unwrap(), "abc-123");

    let res = client.get(format!("{}/api/v3/whoami", server.base)).send().await.unwrap();
    let header = res.headers()["x-correlation-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&header).is_ok(), "{header}");
    assert_eq!(res.text().await.unwrap(), header, "the handler sees the generated id");

    let res = client.get(format!("{}/nope", server.base)).send().await.unwrap();
    assert!(res.headers().contains_key("x-correlation-id"), "errors carry it too");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn errors_answer_in_edgex_json() {
    let server = start(common()).await;
    let client = reqwest::Client::new();

    let (status, content_type, body) = get(format!("{}/no/such/path", server.base)).await;
    assert_eq!((status, content_type.as_deref()), (404, Some("application/json")));
    assert_edgex_error(&body, 404);
    for path in ["/api/v3/no/such/path", "/api/v3", "/api/v3/", "/api/v3/device/name", "/metrics/x"] {
        let (status, _, body) = get(format!("{}{path}", server.base)).await;
        assert_eq!(status, 404, "{path}");
        assert_edgex_error(&body, 404);
    }

    for path in ["ping", "device/name/d1", "echo"] {
        let res = client.delete(format!("{}/api/v3/{path}", server.base)).send().await.unwrap();
        assert_eq!(res.status(), 405, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json");
        let body = res.json().await.unwrap();
        assert_edgex_error(&body, 405);
        assert!(body["message"].as_str().unwrap().contains("DELETE"), "{body}");
    }

    let (status, _, body) = get(format!("{}/api/v3/device/name/d1", server.base)).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"apiVersion": "v3", "statusCode": 404, "message": "device 'd1' does not exist"}));

    for path in ["echo", "echo-json"] {
        let res = client
            .post(format!("{}/api/v3/{path}", server.base))
            .header("content-type", "application/json")
            .body(format!("\"{}\"", "x".repeat(2000)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_edgex_error(&res.json().await.unwrap(), 413);
    }
    let res = client.post(format!("{}/api/v3/echo", server.base)).body("small").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "small");

    let res = client
        .post(format!("{}/api/v3/echo-json", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_edgex_error(&res.json().await.unwrap(), 400);
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn query_errors_are_400_naming_the_parameter() {
    let server = start(common()).await;
    let res = reqwest::get(format!("{}/api/v3/page?offset=2&limit=5", server.base)).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "2:5");

    for (path, name) in [("page?limit=ten", "limit"), ("page?offset=x&limit=1", "offset"), ("page", "limit")] {
        let (status, _, body) = get(format!("{}/api/v3/{path}", server.base)).await;
        assert_eq!(status, 400, "{path}");
        assert_edgex_error(&body, 400);
        assert!(body["message"].as_str().unwrap().contains(name), "{path}: {body}");
    }
    // actix's own extractor: 400 in EdgeX shape, the query string quoted.
    let (status, _, body) = get(format!("{}/api/v3/actix-page?limit=ten", server.base)).await;
    assert_eq!(status, 400);
    assert_edgex_error(&body, 400);
    assert!(body["message"].as_str().unwrap().contains("limit=ten"), "{body}");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = start(common()).await;
    let url = format!("{}/api/v3/slow", server.base);
    let in_flight = tokio::spawn(async move {
        let res = reqwest::Client::new().get(url).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    server.shutdown.cancel();
    let served = tokio::time::timeout(Duration::from_secs(10), server.task).await.expect("serve returns");
    served.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "stopped within the grace period");
    assert_eq!(in_flight.await.unwrap(), (200, "done".to_owned()));
    assert!(reqwest::get(format!("{}/api/v3/ping", server.base)).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn secret_requests_are_validated_then_refused_without_a_secret_store() {
    let server = start(common()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v3/secret", server.base);
    let post = |body: Value| client.post(&url).json(&body).send();

    let res = post(json!({"apiVersion": "v3", "secretName": "", "secretData": []})).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_edgex_error(&body, 400);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("secretName") && message.contains("secretData"), "{message}");

    let ok = json!({"apiVersion": "v3", "secretName": "creds", "secretData": [{"key": "user", "value": "u"}]});
    let res = post(ok).await.unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_edgex_error(&body, 500);
    assert!(body["message"].as_str().unwrap().contains("without a secret store"), "{body}");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}
