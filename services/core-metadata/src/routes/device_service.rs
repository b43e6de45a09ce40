//! `/deviceservice`: add, update, query and delete device services.

use actix_web::{web, HttpResponse};
use oxedge_contracts::{AddDeviceServiceRequest, DeviceService, UpdateDeviceServiceRequest};
use oxedge_runtime::ApiResult;

use super::{add_each, label_filter, list_page, ok, ok_with, parse_batch, update_each, Limits, QueryMap};
use crate::metadata::{to_value, Metadata};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/deviceservice", web::post().to(add))
        .route("/deviceservice", web::patch().to(patch))
        .route("/deviceservice/all", web::get().to(all))
        .route("/deviceservice/name/{name}", web::get().to(by_name))
        .route("/deviceservice/name/{name}", web::delete().to(delete));
}

async fn add(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let items = parse_batch(&body, |r: &AddDeviceServiceRequest, v, p| r.service.validate(v, &format!("{p}.service")))?;
    add_each(items, |r| md.add(r.service)).await
}

async fn patch(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items =
        parse_batch(&body, |r: &UpdateDeviceServiceRequest, v, p| r.service.validate(v, &format!("{p}.service")))?;
    update_each(items, |r| async move {
        let u = r.service;
        let mut s: DeviceService = md.find(u.id.as_deref(), u.name.as_deref()).await?;
        u.apply(&mut s);
        md.replace(s).await
    })
    .await
}

async fn all(md: web::Data<Metadata>, limits: web::Data<Limits>, q: QueryMap) -> ApiResult {
    list_page::<DeviceService>(&md, **limits, &q, label_filter(&q), "services").await
}

async fn by_name(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    let s: DeviceService = md.get(&name).await?;
    Ok(ok_with("service", to_value(&s)))
}

async fn delete(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult<HttpResponse> {
    md.delete::<DeviceService>(&name).await?;
    Ok(ok())
}
