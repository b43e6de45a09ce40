//! The core-metadata REST API, one file per resource, and what they share: paging,
//! filters, batch requests and the response envelope.

pub mod device;
pub mod device_profile;
pub mod device_service;
pub mod provision_watcher;
pub mod uom;

use std::collections::HashMap;
use std::future::Future;

use actix_web::web;
use oxedge_contracts::{
    check_api_version, from_json, BaseRequest, BaseResponse, BaseWithIdResponse, EdgeXError, Validator,
};
use oxedge_runtime::reply;
pub use oxedge_runtime::reply::{flag, ok, ok_with, page_with, QueryMap};
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

/// Reads `offset` and `limit` as EdgeX does (see [`oxedge_runtime::reply::paging`]).
pub fn paging(q: &HashMap<String, String>, limits: Limits) -> Result<Page, EdgeXError> {
    let p = reply::paging(q, limits.max_result_count)?;
    Ok(Page { offset: p.offset as usize, limit: Some(p.limit as usize) })
}

/// EdgeX answers 416 when `offset` lies beyond the matches.
pub fn check_range(total: u64, page: Page) -> Result<(), EdgeXError> {
    reply::check_range(total, page.offset as u64)
}

/// A filter from the `labels` parameter (comma-separated, any of them matches).
pub fn label_filter(q: &HashMap<String, String>) -> Filter {
    let labels = q
        .get("labels")
        .map(|s| s.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    Filter { labels, ..Default::default() }
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
