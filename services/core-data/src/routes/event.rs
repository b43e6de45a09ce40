//! `/event…`: add an event, query events by id, device and time, count, delete.

use actix_web::{web, HttpResponse};
use oxedge_contracts::{check_api_version, from_json, AddEventRequest, BaseWithIdResponse, EdgeXError, Validator};
use oxedge_runtime::reply::QueryMap;
use oxedge_runtime::{json, ApiResult};

use super::{accepted, count, one, page, paged, time_range, Limits};
use crate::data::{store_error, CoreData};
use crate::retention::now_nanos;
use crate::store::EventFilter;

/// Registers the event routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/event/all", web::get().to(all))
        .route("/event/count", web::get().to(count_all))
        .route("/event/count/device/name/{name}", web::get().to(count_by_device))
        .route("/event/id/{id}", web::get().to(by_id))
        .route("/event/id/{id}", web::delete().to(delete_by_id))
        .route("/event/device/name/{name}", web::get().to(by_device))
        .route("/event/device/name/{name}", web::delete().to(delete_by_device))
        .route("/event/start/{start}/end/{end}", web::get().to(by_time))
        .route("/event/age/{age}", web::delete().to(delete_by_age))
        .route("/event/{service}/{profile}/{device}/{source}", web::post().to(add));
}

type Data = web::Data<CoreData>;
type Lim = web::Data<Limits>;

async fn add(data: Data, path: web::Path<(String, String, String, String)>, body: web::Bytes) -> ApiResult {
    let (service, profile, device, _source) = path.into_inner();
    let req: AddEventRequest = from_json(&body)?;
    let mut v = Validator::new();
    check_api_version(&mut v, "", &req.base);
    req.event.validate(&mut v, "event");
    v.check(req.event.device_name == device, "event.deviceName", &format!("must match the path's device '{device}'"));
    v.check(
        req.event.profile_name == profile,
        "event.profileName",
        &format!("must match the path's profile '{profile}'"),
    );
    v.finish()?;
    let (rid, id) = (req.base.request_id.clone(), req.event.id.clone());
    data.add_event(&service, req).await?;
    Ok(json(201, &BaseWithIdResponse::created(rid, id)))
}

async fn list(data: &CoreData, limits: Limits, q: &QueryMap, filter: EventFilter) -> ApiResult {
    let page = page(q, limits)?;
    let (events, total) = data.store().events(&filter, page).await.map_err(store_error)?;
    paged("events", &events, total, page, q)
}

async fn all(data: Data, limits: Lim, q: QueryMap) -> ApiResult {
    list(&data, **limits, &q, EventFilter::default()).await
}

async fn by_device(data: Data, limits: Lim, q: QueryMap, name: web::Path<String>) -> ApiResult {
    list(&data, **limits, &q, EventFilter { device: Some(name.into_inner()), ..Default::default() }).await
}

async fn by_time(data: Data, limits: Lim, q: QueryMap, path: web::Path<(String, String)>) -> ApiResult {
    let (start, end) = time_range(&path.0, &path.1)?;
    list(&data, **limits, &q, EventFilter { start: Some(start), end: Some(end), ..Default::default() }).await
}

async fn by_id(data: Data, q: QueryMap, id: web::Path<String>) -> ApiResult {
    let event = data.event(&id).await?;
    one("event", &event, &q)
}

async fn count_all(data: Data) -> ApiResult {
    Ok(count(data.store().count_events(&EventFilter::default()).await.map_err(store_error)?))
}

async fn count_by_device(data: Data, name: web::Path<String>) -> ApiResult {
    let filter = EventFilter { device: Some(name.into_inner()), ..Default::default() };
    Ok(count(data.store().count_events(&filter).await.map_err(store_error)?))
}

async fn delete_by_id(data: Data, id: web::Path<String>) -> ApiResult {
    data.delete_event(&id).await?;
    Ok(oxedge_runtime::reply::ok())
}

async fn delete_by_device(data: Data, name: web::Path<String>) -> HttpResponse {
    data.purge_in_background(EventFilter { device: Some(name.into_inner()), ..Default::default() });
    accepted()
}

async fn delete_by_age(data: Data, age: web::Path<String>) -> ApiResult {
    let age: i64 = age
        .parse()
        .ok()
        .filter(|a| *a >= 0)
        .ok_or_else(|| EdgeXError::invalid(format!("age: '{age}' is not a number of nanoseconds ≥ 0")))?;
    let end = now_nanos().saturating_sub(age);
    data.purge_in_background(EventFilter { end: Some(end), ..Default::default() });
    Ok(accepted())
}
