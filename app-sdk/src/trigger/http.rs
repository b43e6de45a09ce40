//! The HTTP trigger: `POST /api/v3/trigger` runs the pipelines on the body and answers with
//! the response data a function set (`SetResponseData`), as EdgeX's HTTP trigger does.
//!
//! The body is decoded as the trigger's `target_type` says (an event as JSON, or CBOR with
//! `Content-Type: application/cbor`; or the raw bytes). A body that is not what is expected
//! is answered 400 naming what is wrong; a function error 422 naming the pipeline and
//! function; a service that is stopping 503 — each in EdgeX's error envelope. The answer
//! comes once every export has taken the data.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use oxedge_contracts::{BaseResponse, EdgeXError, ErrorKind};
use oxedge_runtime::{ApiError, ApiResult};
use tokio::sync::mpsc;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{AdditionalProperties, ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::OpenApi;

use crate::config::TargetType;
use crate::pipeline::{Message, Runner};

/// What the route needs.
pub(crate) struct HttpTrigger {
    pub runner: Runner,
    pub target: TargetType,
}

/// Adds `POST /trigger` (under `/api/v3`).
pub(crate) fn configure(cfg: &mut web::ServiceConfig, trigger: web::Data<HttpTrigger>) {
    cfg.app_data(trigger).service(web::resource("/trigger").post(trigger_pipeline));
}

/// The route, for the OpenAPI document.
#[rustfmt::skip]
const ROUTES: &[oxedge_runtime::openapi::Route] = &[(
    HttpMethod::Post, "/trigger", "Runs the pipelines on the body; answers with the response data a function set",
    &[], oxedge_runtime::openapi::Body::One("TriggerRequest"), oxedge_runtime::openapi::Answer::Status(200, "TriggerResponse"),
)];

/// The OpenAPI document of `POST /trigger`, served at `/api/v3/openapi.json` with the HTTP trigger.
pub(crate) fn openapi() -> OpenApi {
    let free_form = |what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(what))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
    };
    let components = ComponentsBuilder::new()
        .schema_from::<BaseResponse>()
        .schema("TriggerRequest", free_form("What the trigger's target type takes: an EdgeX event by default"))
        .schema("TriggerResponse", free_form("The response data a function set, in its own media type"))
        .build();
    let mut doc = oxedge_runtime::openapi::document("app service", ROUTES, |_| Type::String, components);
    let more = [(HttpMethod::Post, "/trigger", &[413, 422, 503][..])];
    oxedge_runtime::openapi::add_error_answers(&mut doc, &more, |code| match code {
        413 => "The body is too large",
        422 => "A function failed",
        _ => "The service is stopping",
    });
    doc
}

async fn trigger_pipeline(req: HttpRequest, body: web::Bytes, trigger: web::Data<HttpTrigger>) -> ApiResult {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or(oxedge_bus::CONTENT_TYPE_JSON)
        .to_owned();
    let data = super::from_raw(body, &content_type, trigger.target).map_err(|e| ApiError(EdgeXError::invalid(e)))?;
    let message =
        Message { topic: String::new(), correlation_id: oxedge_runtime::correlation_id(&req), data, delivery: None };
    let stopping = || ApiError(EdgeXError::new(ErrorKind::ServiceUnavailable, "the service is stopping"));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = trigger.runner.submit(message, Some(tx)).await;
    if count == 0 {
        return Err(stopping());
    }
    let mut response = None;
    for _ in 0..count {
        let outcome = rx.recv().await.ok_or_else(stopping)?;
        match outcome.result {
            Err((function, error)) => {
                let message = format!("pipeline {}: function {function} failed: {error}", outcome.pipeline);
                let mut body = BaseResponse::from_error("", &EdgeXError::new(ErrorKind::ServerError, message));
                body.status_code = 422;
                return Ok(oxedge_runtime::json(422, &body));
            }
            Ok(Some(data)) if response.is_none() => response = Some(data),
            Ok(_) => {}
        }
    }
    Ok(match response {
        Some((bytes, content_type)) => {
            HttpResponse::Ok().insert_header((header::CONTENT_TYPE, content_type)).body(bytes)
        }
        None => HttpResponse::Ok().finish(),
    })
}
