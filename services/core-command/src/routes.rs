//! The core-command REST API: `/device/all`, `/device/name/{name}` and
//! `/device/name/{name}/{command}` (GET reads, PUT writes).

use actix_web::{web, HttpRequest};
use oxedge_contracts::{BaseResponse, DeviceCoreCommandResponse, EdgeXError, MultiDeviceCoreCommandsResponse};
use oxedge_runtime::reply::paging;
use oxedge_runtime::{correlation_id, json, ApiResult};
use serde_json::{Map, Value};

use crate::command::{CommandRequest, Commands, Method};
use crate::reply::to_http;

/// Limits the routes apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest `limit` a query may ask for (EdgeX's `MaxResultCount`).
    pub max_result_count: usize,
}

/// Registers every core-command route (under `/api/v3`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/device/all", web::get().to(all))
        .route("/device/name/{name}", web::get().to(by_device))
        .route("/device/name/{name}/{command}", web::get().to(read))
        .route("/device/name/{name}/{command}", web::put().to(write));
}

type Data = web::Data<Commands>;

/// The query string's pairs, in order; a malformed one is a 400.
fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, EdgeXError> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|e| EdgeXError::invalid(format!("invalid query string '{}': {e}", req.query_string())))
}

async fn all(data: Data, limits: web::Data<Limits>, req: HttpRequest) -> ApiResult {
    let pairs = query_pairs(&req)?;
    let q = pairs.iter().cloned().collect();
    let page = paging(&q, limits.max_result_count)?;
    let labels: Vec<String> = q
        .get("labels")
        .map(|l| l.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let (total, device_core_commands) = data.all_commands(page.offset, page.limit, &labels).await?;
    let body =
        MultiDeviceCoreCommandsResponse { base: BaseResponse::new("", 200), total_count: total, device_core_commands };
    Ok(json(200, &body))
}

async fn by_device(data: Data, name: web::Path<String>) -> ApiResult {
    let device_core_command = data.device_commands(&name).await?;
    Ok(json(200, &DeviceCoreCommandResponse { base: BaseResponse::new("", 200), device_core_command }))
}

fn request(req: &HttpRequest, path: (String, String), method: Method) -> Result<CommandRequest, EdgeXError> {
    let (device, command) = path;
    Ok(CommandRequest {
        device,
        command,
        method,
        query: query_pairs(req)?,
        raw_query: req.query_string().to_owned(),
        correlation_id: correlation_id(req),
        request_id: String::new(),
        settings: Map::new(),
    })
}

async fn read(data: Data, req: HttpRequest, path: web::Path<(String, String)>) -> ApiResult {
    let command = request(&req, path.into_inner(), Method::Get)?;
    to_http(data.issue(&command).await?, Method::Get)
}

async fn write(data: Data, req: HttpRequest, path: web::Path<(String, String)>, body: web::Bytes) -> ApiResult {
    let settings = settings(&body)?;
    let command = CommandRequest { settings, ..request(&req, path.into_inner(), Method::Set)? };
    to_http(data.issue(&command).await?, Method::Set)
}

/// A write's body: a JSON object of resource name → value.
pub fn settings(body: &[u8]) -> Result<Map<String, Value>, EdgeXError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| EdgeXError::invalid(format!("malformed body: {e}")))?;
    let kind = match value {
        Value::Object(map) => return Ok(map),
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(EdgeXError::invalid(format!("body: expected a JSON object of resource name → value, got {kind}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_must_be_objects() {
        assert_eq!(settings(br#"{"A": "1"}"#).unwrap()["A"], "1");
        assert!(settings(b"[1]").unwrap_err().message.contains("got an array"));
        assert!(settings(b"{").unwrap_err().message.starts_with("malformed body"));
        assert!(settings(b"").unwrap_err().message.starts_with("malformed body"));
    }
}
