//! What every service shares at run time ([`Common`]) and the HTTP server ([`serve`]) that
//! mounts the common endpoints beside the service's own routes.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::http::header::HttpDate;
use actix_web::http::KeepAlive;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use futures_util::future::{join_all, BoxFuture};
use oxedge_contracts::{EdgeXError, ErrorKind, API_VERSION};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa::{OpenApi as _, ToSchema};

use crate::config::{redact, ServiceSection};
use crate::error::{json, ApiError, ApiResult};
use crate::metrics::{self, HttpMetrics, SharedRegistry};
use crate::middleware;

/// How long one health check may take before it counts as failed.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

type HealthCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What the common endpoints serve: the service's name, version, configuration, metrics,
/// health checks and OpenAPI document. Cheap to clone.
#[derive(Clone)]
pub struct Common {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    service_name: &'static str,
    version: String,
    config: serde_json::Value,
    registry: SharedRegistry,
    http: HttpMetrics,
    checks: Vec<(String, HealthCheck)>,
    openapi: Option<OpenApi>,
    keep_alive: bool,
}

impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checks: Vec<&str> = self.inner.checks.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Common")
            .field("service_name", &self.inner.service_name)
            .field("version", &self.inner.version)
            .field("checks", &checks)
            .finish_non_exhaustive()
    }
}

impl Common {
    /// Shared state for `service_name`, serving `config` (redacted) at `/api/v3/config`.
    /// The version is the runtime's; see [`Common::with_version`].
    pub fn new(service_name: &'static str, config: serde_json::Value) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        Self {
            inner: Arc::new(Inner {
                service_name,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                config: redact(&config),
                registry: Arc::new(Mutex::new(registry)),
                http,
                checks: Vec::new(),
                openapi: None,
                keep_alive: true,
            }),
        }
    }

    /// Closes every connection after its answer (`Connection: close`): for a server that will
    /// hand its port over, so that no client keeps a connection that the next server does
    /// not own (a request sent on it while the handover happens would find it closed).
    pub fn closing_connections(mut self) -> Self {
        Arc::make_mut(&mut self.inner).keep_alive = false;
        self
    }

    /// Serves `version` at `/api/v3/version` instead of the runtime's version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).version = version.into();
        self
    }

    /// The service's name.
    pub fn service_name(&self) -> &'static str {
        self.inner.service_name
    }

    /// The version served at `/api/v3/version`.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The redacted configuration served at `/api/v3/config`.
    pub fn config(&self) -> &serde_json::Value {
        &self.inner.config
    }

    /// The registry served at `/metrics`; register the service's own metrics here.
    pub fn registry(&self) -> SharedRegistry {
        Arc::clone(&self.inner.registry)
    }

    /// Adds a check `/api/v3/health` runs; `Err(message)` makes the service DOWN (503).
    /// A check with the same name is replaced.
    pub fn add_health_check(
        &mut self,
        name: &str,
        check: impl Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    ) {
        let checks = &mut Arc::make_mut(&mut self.inner).checks;
        checks.retain(|(existing, _)| existing != name);
        checks.push((name.to_owned(), Arc::new(check)));
    }

    /// Adds the check `bus`: DOWN while `bus` is not connected to its broker.
    pub fn add_bus_health_check(&mut self, bus: Arc<dyn oxedge_bus::Bus>) {
        self.add_health_check("bus", move || {
            let result = if bus.is_connected() { Ok(()) } else { Err(format!("not connected to {}", bus.describe())) };
            Box::pin(async move { result })
        });
    }

    /// Sets the service's OpenAPI document; `/api/v3/openapi.json` serves it merged with the
    /// common endpoints.
    pub fn set_openapi(&mut self, api: OpenApi) {
        Arc::make_mut(&mut self.inner).openapi = Some(api);
    }

    /// Runs every health check concurrently: `true` when all pass, and each check's result
    /// (`"UP"` or its failure message).
    pub async fn check_health(&self) -> (bool, BTreeMap<String, String>) {
        let runs = self.inner.checks.iter().map(|(name, check)| async move {
            let result = match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {}s", HEALTH_CHECK_TIMEOUT.as_secs())),
            };
            (name.clone(), result)
        });
        let results = join_all(runs).await;
        let up = results.iter().all(|(_, result)| result.is_ok());
        let checks =
            results.into_iter().map(|(name, result)| (name, result.err().unwrap_or_else(|| "UP".to_owned()))).collect();
        (up, checks)
    }

    /// The service's OpenAPI document merged with the common endpoints'.
    pub fn openapi(&self) -> OpenApi {
        let mut api = self.inner.openapi.clone().unwrap_or_else(|| {
            utoipa::openapi::OpenApiBuilder::new()
                .info(utoipa::openapi::Info::new(self.inner.service_name, &self.inner.version))
                .build()
        });
        api.merge(CommonApi::openapi());
        api
    }

    pub(crate) fn http_metrics(&self) -> &HttpMetrics {
        &self.inner.http
    }
}

/// Serves `common`'s endpoints and the service's `routes` (mounted under `/api/v3`) on
/// `listener` until `shutdown` is cancelled, then lets in-flight requests finish for up to
/// `section.shutdown_grace` seconds and returns.
///
/// A request whose path a route knows but whose method none takes is answered 405.
pub async fn serve<F>(
    common: Common,
    section: &ServiceSection,
    listener: TcpListener,
    shutdown: CancellationToken,
    routes: F,
) -> anyhow::Result<()>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let address = listener.local_addr().context("Failed to read the listener's address.")?;
    let service_name = common.service_name();
    let openapi = serde_json::to_vec(&common.openapi()).context("Failed to encode the OpenAPI document.")?;
    let openapi = web::Data::new(OpenApiJson(openapi));
    let keep_alive = if common.inner.keep_alive { KeepAlive::default() } else { KeepAlive::Disabled };
    let data = web::Data::new(common);
    let limit = section.max_request_size;

    let server = HttpServer::new(move || {
        let routes = routes.clone();
        App::new()
            .app_data(data.clone())
            .app_data(openapi.clone())
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::JsonConfig::default().limit(limit))
            .app_data(web::FormConfig::default().limit(limit))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .wrap(from_fn(middleware::observe))
            .service(web::resource("/metrics").get(metrics_text))
            .service(
                web::scope("/api/v3")
                    .service(web::resource("/ping").get(ping))
                    .service(web::resource("/version").get(version))
                    .service(web::resource("/config").get(config))
                    .service(web::resource("/health").get(health))
                    .service(web::resource("/openapi.json").get(openapi_json))
                    .service(web::resource("/secret").post(secret))
                    .configure(move |cfg| routes(cfg)),
            )
            .default_service(web::to(not_found))
    })
    .workers(section.workers.max(1))
    .keep_alive(keep_alive)
    .disable_signals()
    .shutdown_timeout(section.shutdown_grace)
    .listen(listener)
    .with_context(|| format!("Failed to serve HTTP on {address}."))?
    .run();

    tracing::info!(service = service_name, %address, "Listening for HTTP requests.");
    let handle = server.handle();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.context("HTTP server failed.")?,
        _ = shutdown.cancelled() => {
            tracing::info!(service = service_name, grace_secs = section.shutdown_grace, "Stopping HTTP server.");
            // The server future must keep running for the stop to complete.
            let (result, ()) = tokio::join!(&mut server, handle.stop(true));
            result.context("HTTP server failed while stopping.")?;
        }
    }
    tracing::info!(service = service_name, "HTTP server stopped.");
    Ok(())
}

struct OpenApiJson(Vec<u8>);

/// `GET /api/v3/ping` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingResponse {
    /// Always `v3`.
    pub api_version: &'static str,
    /// The service's time, in RFC 1123 form (`Mon, 02 Jan 2006 15:04:05 GMT`).
    pub timestamp: String,
    /// The service's name.
    pub service_name: String,
}

/// `GET /api/v3/version` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionResponse {
    /// Always `v3`.
    pub api_version: &'static str,
    /// The service's version.
    pub version: String,
    /// The service's name.
    pub service_name: String,
}

/// `GET /api/v3/config` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResponse {
    /// Always `v3`.
    pub api_version: &'static str,
    /// The service's name.
    pub service_name: String,
    /// The configuration in effect, secrets replaced by `***`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// `GET /api/v3/health` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// Always `v3`.
    pub api_version: &'static str,
    /// The service's name.
    pub service_name: String,
    /// `UP` when every check passes, else `DOWN`.
    pub status: &'static str,
    /// Each check's result: `UP` or why it failed.
    pub checks: BTreeMap<String, String>,
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(ping, version, config, health, openapi_json, metrics_text, secret))]
struct CommonApi;

/// Answers that the service is running.
#[utoipa::path(get, path = "/api/v3/ping", tag = "common",
    responses((status = 200, description = "The service is running", body = PingResponse)))]
async fn ping(common: web::Data<Common>) -> HttpResponse {
    let timestamp = HttpDate::from(SystemTime::now()).to_string();
    json(200, &PingResponse { api_version: API_VERSION, timestamp, service_name: common.service_name().to_owned() })
}

/// Answers the service's version.
#[utoipa::path(get, path = "/api/v3/version", tag = "common",
    responses((status = 200, description = "The service's version", body = VersionResponse)))]
async fn version(common: web::Data<Common>) -> HttpResponse {
    json(
        200,
        &VersionResponse {
            api_version: API_VERSION,
            version: common.version().to_owned(),
            service_name: common.service_name().to_owned(),
        },
    )
}

/// Answers the configuration in effect, secrets redacted.
#[utoipa::path(get, path = "/api/v3/config", tag = "common",
    responses((status = 200, description = "The configuration in effect", body = ConfigResponse)))]
async fn config(common: web::Data<Common>) -> HttpResponse {
    json(
        200,
        &ConfigResponse {
            api_version: API_VERSION,
            service_name: common.service_name().to_owned(),
            config: common.config().clone(),
        },
    )
}

/// Runs the health checks.
#[utoipa::path(get, path = "/api/v3/health", tag = "common", responses(
    (status = 200, description = "Every check passes", body = HealthResponse),
    (status = 503, description = "A check fails", body = HealthResponse)))]
async fn health(common: web::Data<Common>) -> HttpResponse {
    let (up, checks) = common.check_health().await;
    let body = HealthResponse {
        api_version: API_VERSION,
        service_name: common.service_name().to_owned(),
        status: if up { "UP" } else { "DOWN" },
        checks,
    };
    json(if up { 200 } else { 503 }, &body)
}

/// Answers this OpenAPI document.
#[utoipa::path(get, path = "/api/v3/openapi.json", tag = "common",
    responses((status = 200, description = "The service's OpenAPI document", content_type = "application/json")))]
async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(doc.0.clone())
}

/// Answers the service's metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "common",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text")))]
async fn metrics_text(common: web::Data<Common>) -> ApiResult {
    let text =
        metrics::encode(&common.inner.registry).map_err(|_| EdgeXError::server("failed to encode the metrics"))?;
    Ok(HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(text))
}

/// Stores a secret for the service. No secret store is wired into the services yet, so a
/// valid request is refused as EdgeX refuses it in its non-secure mode: 500 with the reason.
#[utoipa::path(post, path = "/api/v3/secret", tag = "common", request_body = oxedge_contracts::SecretRequest, responses(
    (status = 400, description = "The request is malformed"),
    (status = 500, description = "The service has no secret store")))]
async fn secret(body: web::Bytes) -> ApiResult {
    let req: oxedge_contracts::SecretRequest = oxedge_contracts::from_json(&body)?;
    let mut v = oxedge_contracts::Validator::new();
    req.validate(&mut v);
    v.finish()?;
    Err(EdgeXError::server(format!(
        "cannot store secret '{}': this service runs without a secret store (non-secure mode)",
        req.secret_name
    ))
    .into())
}

/// Answers requests no route took: 405 when the path is known for other methods, else 404.
async fn not_found(req: HttpRequest) -> ApiResult {
    if req.resource_map().has_resource(req.path()) {
        let message = format!("method {} is not allowed on {}", req.method(), req.path());
        return Err(EdgeXError::new(ErrorKind::MethodNotAllowed, message).into());
    }
    Err(EdgeXError::not_found("route", req.path()).into())
}

fn query_error(err: actix_web::error::QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    ApiError(EdgeXError::invalid(format!("invalid query string '{}': {err}", req.query_string()))).into()
}
