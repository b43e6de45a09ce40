//! The one middleware every request goes through: correlation id, tracing span, metrics, and
//! error answers rewritten into EdgeX's JSON shape.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use tracing::Instrument;

use crate::error::{error_body, json};
use crate::server::Common;

/// The header carrying the id that ties together the logs of one request across services.
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// The correlation id of a request, stored in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CorrelationId(String);

/// The correlation id of `req`: the caller's `X-Correlation-ID`, or one generated for it.
///
/// Empty outside a service started by [`crate::serve`] when the caller sent none.
pub fn correlation_id(req: &HttpRequest) -> String {
    if let Some(CorrelationId(id)) = req.extensions().get::<CorrelationId>() {
        return id.clone();
    }
    incoming_id(req.headers()).unwrap_or_default()
}

/// The caller's correlation id, if it is usable as a header value and a log field.
fn incoming_id(headers: &header::HeaderMap) -> Option<String> {
    let id = headers.get(&CORRELATION_ID)?.to_str().ok()?.trim();
    let usable = !id.is_empty() && id.len() <= 256 && id.chars().all(|c| c.is_ascii_graphic());
    usable.then(|| id.to_owned())
}

/// Tags, times, counts and, on errors, reshapes each request.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = incoming_id(req.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(CorrelationId(id.clone()));
    let common = req.app_data::<web::Data<Common>>().cloned();
    let span = tracing::info_span!("request", method = %req.method(), path = %req.path(), correlation_id = %id);

    let method = req.method().as_str().to_owned();
    let res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res,
        Err(err) => {
            // An inner middleware failed and took the request with it: answer in EdgeX's shape
            // through the error, without the correlation header.
            let status = err.as_response_error().status_code();
            if let Some(common) = common {
                common.http_metrics().observe(&method, "unmatched", status.as_u16(), started.elapsed());
            }
            return Err(StatusError(status, err.to_string()).into());
        }
    };
    let mut res = to_edgex_error(res.map_into_boxed_body());
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(CORRELATION_ID, value);
    }

    let status = res.status();
    let elapsed = started.elapsed();
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    if let Some(common) = common {
        common.http_metrics().observe(&method, &route, status.as_u16(), elapsed);
    }
    span.in_scope(|| {
        tracing::debug!(status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1e3, "Answered request.")
    });
    Ok(res)
}

/// Rewrites an error answer that is not JSON (actix's 404, 405, 413, extractor errors) into the
/// EdgeX error shape, keeping its status and other headers.
fn to_edgex_error(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) {
        return res;
    }
    let message = match res.response().error() {
        Some(err) => err.to_string(),
        None if status == StatusCode::METHOD_NOT_ALLOWED => {
            format!("method {} is not allowed on {}", res.request().method(), res.request().path())
        }
        None if status == StatusCode::NOT_FOUND => format!("no route for {}", res.request().path()),
        None => status.canonical_reason().unwrap_or("request failed").to_owned(),
    };
    let (req, old) = res.into_parts();
    let mut new = json(status.as_u16(), &error_body(status.as_u16(), message));
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}

/// An error answered with its status and the EdgeX error body.
#[derive(Debug)]
struct StatusError(StatusCode, String);

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl ResponseError for StatusError {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        json(self.0.as_u16(), &error_body(self.0.as_u16(), self.1.clone()))
    }
}

fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}
