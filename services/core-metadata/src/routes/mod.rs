//! The core-metadata REST API, one file per resource, and what they share: paging,
//! filters, batch requests and the response envelope.

pub mod device;
pub mod device_profile;
pub mod device_service;
pub mod provision_watcher;
pub mod uom;

use std::collections::HashMap;
use std::future::Future;

use actix_web::{web, HttpResponse};
use oxedge_contracts::{
    check_api_version, from_json, BaseRequest, BaseResponse, BaseWithIdResponse, EdgeXError, ErrorKind, Validator,
};
use oxedge_runtime::{json, ApiResult};
use serde::de::DeserializeOwned;

use crate::entity::Entity;
use crate::metadata::Metadata;
use crate::store::{Filter, Page};

/// Limits the routes apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest `limit` a query may ask for (EdgeX's `MaxResultCount`).
    pub max_result_count: usize,
    /// The largest body accepted, in bytes (uploads are streamed and checked against it).
    pub max_request_size: usize,
}

/// Registers every core-metadata route (under `/api/v3`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    device_service::configure(cfg);
    device_profile::configure(cfg);
    device::configure(cfg);
    provision_watcher::configure(cfg);
    uom::configure(cfg);
}

/// The raw query string parameters of a request.
pub type QueryMap = web::Query<HashMap<String, String>>;

/// Reads `offset` and `limit` as EdgeX does: offset ≥ 0 (default 0), limit ≥ -1 (default
/// 20, -1 meaning up to `MaxResultCount`), limit not above `MaxResultCount`.
pub fn paging(q: &HashMap<String, String>, limits: Limits) -> Result<Page, EdgeXError> {
    let offset = match q.get("offset") {
        None => 0,
        Some(s) => {
            s.parse::<usize>().map_err(|_| EdgeXError::invalid(format!("offset: '{s}' is not an integer ≥ 0")))?
        }
    };
    let limit = match q.get("limit") {
        None => 20,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|l| *l >= -1)
            .ok_or_else(|| EdgeXError::invalid(format!("limit: '{s}' is not an integer ≥ -1")))?,
    };
    let limit = if limit == -1 { limits.max_result_count } else { limit as usize };
    if limit > limits.max_result_count {
        return Err(EdgeXError::invalid(format!(
            "limit: {limit} exceeds the maximum result count {}",
            limits.max_result_count
        )));
    }
    Ok(Page { offset, limit: Some(limit) })
}

/// EdgeX answers 416 when `offset` lies beyond the matches.
pub fn check_range(total: u64, page: Page) -> Result<(), EdgeXError> {
    if total > 0 && page.offset as u64 > total {
        return Err(EdgeXError::new(
            ErrorKind::RangeNotSatisfiable,
            format!("offset {} is beyond the {total} matching entries", page.offset),
        ));
    }
    Ok(())
}

/// A filter from the `labels` parameter (comma-separated, any of them matches).
pub fn label_filter(q: &HashMap<String, String>) -> Filter {
    let labels = q
        .get("labels")
        .map(|s| s.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    Filter { labels, ..Default::default() }
}

/// Reads a boolean query parameter (`true`/`false`), default false.
pub fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, EdgeXError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(false),
        Some(s) => s.parse().map_err(|_| EdgeXError::invalid(format!("{name}: '{s}' is not true or false"))),
    }
}

/// A 200 answer `{apiVersion, statusCode: 200, <field>: value}`.
pub fn ok_with(field: &str, value: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::Map::new();
    body.insert("apiVersion".into(), oxedge_contracts::API_VERSION.into());
    body.insert("statusCode".into(), 200.into());
    body.insert(field.into(), value);
    json(200, &body)
}

/// A 200 answer with a page: `{apiVersion, statusCode: 200, totalCount, <field>: [...]}`.
pub fn page_with<T: serde::Serialize>(field: &str, items: &[T], total: u64) -> HttpResponse {
    let mut body = serde_json::Map::new();
    body.insert("apiVersion".into(), oxedge_contracts::API_VERSION.into());
    body.insert("statusCode".into(), 200.into());
    body.insert("totalCount".into(), total.into());
    body.insert(field.into(), serde_json::to_value(items).unwrap_or_default());
    json(200, &body)
}

/// Answers a page of `T` matching `filter`, paged by the request's `offset`/`limit`, as the
/// list `field` (`devices`, `services`…), with `totalCount`.
pub async fn list_page<T: Entity>(
    md: &Metadata,
    limits: Limits,
    q: &HashMap<String, String>,
    filter: Filter,
    field: &str,
) -> ApiResult {
    let page = paging(q, limits)?;
    let (items, total) = md.list::<T>(&filter, page).await?;
    check_range(total, page)?;
    Ok(page_with(field, &items, total))
}

/// A 200 answer with only the envelope.
pub fn ok() -> HttpResponse {
    json(200, &BaseResponse::new("", 200))
}

/// A request item: it carries `apiVersion` and `requestId`.
pub trait Item: DeserializeOwned {
    /// The item's base fields.
    fn base(&self) -> &BaseRequest;
}

macro_rules! items {
    ($($t:ty),*) => { $(impl Item for $t { fn base(&self) -> &BaseRequest { &self.base } })* };
}
items!(
    oxedge_contracts::AddDeviceServiceRequest,
    oxedge_contracts::UpdateDeviceServiceRequest,
    oxedge_contracts::DeviceProfileRequest,
    oxedge_contracts::DeviceProfileBasicInfoRequest,
    oxedge_contracts::AddDeviceResourceRequest,
    oxedge_contracts::UpdateDeviceResourceRequest,
    oxedge_contracts::AddDeviceCommandRequest,
    oxedge_contracts::UpdateDeviceCommandRequest,
    oxedge_contracts::AddDeviceRequest,
    oxedge_contracts::UpdateDeviceRequest,
    oxedge_contracts::AddProvisionWatcherRequest,
    oxedge_contracts::UpdateProvisionWatcherRequest
);

/// Parses a batch body (a JSON array of items) and validates every item; any problem
/// rejects the whole batch with 400 before anything is written, as EdgeX does.
pub fn parse_batch<R: Item>(body: &[u8], validate: impl Fn(&R, &mut Validator, &str)) -> Result<Vec<R>, EdgeXError> {
    let items: Vec<R> = from_json(body)?;
    let mut v = Validator::new();
    for (i, it) in items.iter().enumerate() {
        check_api_version(&mut v, &format!("[{i}]."), it.base());
        validate(it, &mut v, &format!("[{i}]"));
    }
    v.finish()?;
    Ok(items)
}

/// Runs `op` on each item in order and answers 207 with one result per item
/// (`201` with the new id, or the item's error).
pub async fn add_each<R: Item, F, Fut>(items: Vec<R>, op: F) -> ApiResult
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<String, EdgeXError>>,
{
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let rid = it.base().request_id.clone();
        out.push(match op(it).await {
            Ok(id) => BaseWithIdResponse::created(rid, id),
            Err(e) => BaseWithIdResponse::from_error(rid, &e),
        });
    }
    Ok(json(207, &out))
}

/// Runs `op` on each item in order and answers 207 with one result per item
/// (`200`, or the item's error).
pub async fn update_each<R: Item, F, Fut>(items: Vec<R>, op: F) -> ApiResult
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<(), EdgeXError>>,
{
    each(items, 200, op).await
}

/// Runs `op` on each item in order and answers 207 with one result per item
/// (`ok_status`, or the item's error).
pub async fn each<R: Item, F, Fut>(items: Vec<R>, ok_status: u16, op: F) -> ApiResult
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<(), EdgeXError>>,
{
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let rid = it.base().request_id.clone();
        out.push(match op(it).await {
            Ok(()) => BaseResponse::new(rid, ok_status),
            Err(e) => BaseResponse::from_error(rid, &e),
        });
    }
    Ok(json(207, &out))
}
