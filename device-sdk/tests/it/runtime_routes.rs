//! A driver's own HTTP routes (`ProtocolDriver::routes`): served under `/api/v3` beside the
//! SDK's, reaching the driver's state and the `Sdk` handle, with the service's body limit and
//! EdgeX's error shape, without shadowing the SDK's routes.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{web, HttpResponse};
use oxedge_bus::{Bus, InProcessBus};
use oxedge_device_sdk::config::DeviceServiceConfig;
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    async_trait, CommandRequest, CommandValue, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk,
};
use oxedge_testkit::http::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// What the routes share with the driver.
#[derive(Default)]
struct State {
    sdk: OnceLock<Sdk>,
    posted: Mutex<Vec<String>>,
}

/// A driver that serves `GET /echo/{word}`, `POST /notes` and a shadowing `GET /ping`.
#[derive(Default)]
struct RoutingDriver {
    state: Arc<State>,
}

async fn echo(state: web::Data<Arc<State>>, word: web::Path<String>) -> HttpResponse {
    let service = state.sdk.get().map(|s| s.service_name().to_owned()).unwrap_or_default();
    HttpResponse::Ok().json(json!({ "word": word.into_inner(), "service": service }))
}

async fn note(state: web::Data<Arc<State>>, body: web::Bytes) -> HttpResponse {
    state.posted.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
    HttpResponse::Ok().finish()
}

#[async_trait]
impl ProtocolDriver for RoutingDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let _ = self.state.sdk.set(sdk);
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        _: &str,
        _: &Protocols,
        _: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        Err(DriverError::Invalid("no reads".into()))
    }

    async fn handle_write_commands(&self, _: &str, _: &Protocols, _: &[WriteCommand]) -> DriverResult<()> {
        Err(DriverError::Invalid("no writes".into()))
    }

    fn routes(&self, routes: &mut web::ServiceConfig) {
        routes
            .app_data(web::Data::new(self.state.clone()))
            .route("/echo/{word}", web::get().to(echo))
            .route("/notes", web::post().to(note))
            .route("/ping", web::get().to(HttpResponse::ImATeapot));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_routes_are_served_beside_the_sdk_routes_with_the_body_limit_and_error_shape() {
    // core-metadata is not needed: the API is served while registration retries.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut cfg = DeviceServiceConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.service.max_request_size = 1024;
    cfg.clients.core_metadata.url = format!("http://127.0.0.1:{closed_port}");
    let driver = Arc::new(RoutingDriver::default());
    let state = driver.state.clone();
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = Api::new(format!("http://{}/api/v3", listener.local_addr().unwrap()));
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    tokio::spawn(oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone("device-routes", bus, stop.clone()),
        cfg,
        driver,
        listener,
    ));

    let answer = api.get("/echo/hello").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body, json!({ "word": "hello", "service": "device-routes" }));

    let answer = api.post_raw("/notes", "text/plain", "first").await;
    assert_eq!(answer.status, 200);
    assert_eq!(*state.posted.lock().unwrap(), ["first"]);

    let answer = api.post_raw("/notes", "text/plain", vec![b'x'; 2048]).await;
    assert_eq!(answer.status, 413, "{:?}", answer.body);
    assert_eq!(answer.body["statusCode"], 413, "EdgeX's error shape: {:?}", answer.body);
    assert_eq!(state.posted.lock().unwrap().len(), 1, "the oversized body never reached the driver");

    let answer = api.get("/echo").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["statusCode"], 404, "{:?}", answer.body);

    let answer = api.get("/ping").await;
    assert_eq!(answer.status, 200, "the SDK's /ping is not shadowed by the driver's: {:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_scan_is_answered_501_as_edgex_does_for_a_driver_without_it_and_documented() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut cfg = DeviceServiceConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.clients.core_metadata.url = format!("http://127.0.0.1:{closed_port}");
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = Api::new(format!("http://{}/api/v3", listener.local_addr().unwrap()));
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    let driver = Arc::new(RoutingDriver::default());
    tokio::spawn(oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone("device-scan", bus, stop.clone()),
        cfg,
        driver,
        listener,
    ));

    let scan = json!({ "apiVersion": "v3", "deviceName": "pump", "profileName": "pump-profile" });
    for answer in [
        api.post("/profilescan", &scan).await,
        api.post_raw("/profilescan", "application/json", "not json").await,
        api.delete("/profilescan/device/name/pump").await,
    ] {
        assert_eq!(answer.status, 501, "{:?}", answer.body);
        assert_eq!(answer.body["statusCode"], 501, "{:?}", answer.body);
        assert_eq!(answer.body["apiVersion"], "v3", "{:?}", answer.body);
        assert_eq!(answer.message(), "Profile scan is not implemented");
    }
    let answer = api.get("/profilescan").await;
    assert_eq!(answer.status, 405, "{:?}", answer.body);

    // The service's document lists the SDK's routes and these answers, beside the common ones.
    let doc = api.get("/openapi.json").await;
    let paths = &doc.body["paths"];
    assert!(paths["/api/v3/profilescan"]["post"]["responses"]["501"].is_object(), "{paths}");
    assert!(paths["/api/v3/profilescan/device/name/{name}"]["delete"]["responses"]["501"].is_object(), "{paths}");
    assert!(paths["/api/v3/device/name/{name}/{command}"]["put"]["responses"]["400"].is_object(), "{paths}");
    assert!(paths["/api/v3/discovery/requestId/{requestId}"]["delete"].is_object(), "{paths}");
    assert!(paths["/api/v3/ping"]["get"].is_object(), "{paths}");
}
