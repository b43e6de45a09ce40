//! The EdgeX v3 device service REST API: `/api/v3/device/name/{name}/{command}`.
//!
//! `GET` answers an `EventResponse` (or 200 with an empty body, typed `application/json` as
//! EdgeX's, when `ds-returnevent=false`),
//! `PUT` takes a JSON object of resource → value and answers a `BaseResponse`. Bodies over
//! `service.max_request_size` are 413, malformed JSON 400 naming the problem.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use oxedge_contracts::{BaseResponse, EdgeXError, EventResponse};
use oxedge_runtime::{json, ApiResult};
use serde_json::{Map, Value as Json};

use crate::command;
use crate::service::Service;

type Svc = web::Data<Arc<Service>>;

/// Registers the command routes; handlers read `web::Data<Arc<Service>>`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/device/name/{name}/{command}").get(get).put(put));
}

/// The query parameters, each given once (the first value of a repeated one, as Go's
/// `url.Values.Get` reads it).
fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

async fn get(svc: Svc, path: web::Path<(String, String)>, req: HttpRequest) -> ApiResult {
    let (device, cmd) = path.into_inner();
    match command::get(&svc, &device, &cmd, &query(&req)).await? {
        Some(event) => Ok(json(200, &EventResponse { base: BaseResponse::new("", 200), event })),
        // EdgeX's SDK answers an empty body typed as JSON all the same.
        None => Ok(HttpResponse::Ok().content_type(oxedge_bus::CONTENT_TYPE_JSON).finish()),
    }
}

async fn put(svc: Svc, path: web::Path<(String, String)>, req: HttpRequest, body: web::Bytes) -> ApiResult {
    let (device, cmd) = path.into_inner();
    let values = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match oxedge_contracts::from_json::<Json>(&body)? {
            Json::Object(map) => map,
            other => {
                return Err(EdgeXError::invalid(format!(
                    "body: expected a JSON object of resource names and values, found {}",
                    kind_of(&other)
                ))
                .into())
            }
        }
    };
    command::set(&svc, &device, &cmd, &values, &query(&req)).await?;
    Ok(json(200, &BaseResponse::new("", 200)))
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
