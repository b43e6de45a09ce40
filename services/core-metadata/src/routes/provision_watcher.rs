//! `/provisionwatcher`: add, update, query and delete provision watchers.

use actix_web::web;
use oxedge_contracts::{AddProvisionWatcherRequest, ProvisionWatcher, UpdateProvisionWatcherRequest};
use oxedge_runtime::ApiResult;

use super::{add_each, label_filter, list_page, ok, ok_with, parse_batch, update_each, Limits, QueryMap};
use crate::metadata::{to_value, Metadata};
use crate::store::Filter;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/provisionwatcher", web::post().to(add))
        .route("/provisionwatcher", web::patch().to(patch))
        .route("/provisionwatcher/all", web::get().to(all))
        .route("/provisionwatcher/name/{name}", web::get().to(by_name))
        .route("/provisionwatcher/name/{name}", web::delete().to(delete))
        .route("/provisionwatcher/service/name/{name}", web::get().to(by_service))
        .route("/provisionwatcher/profile/name/{name}", web::get().to(by_profile));
}

async fn add(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let items = parse_batch(&body, |r: &AddProvisionWatcherRequest, v, p| {
        r.provision_watcher.validate(v, &format!("{p}.provisionWatcher"))
    })?;
    add_each(items, |r| md.add(r.provision_watcher)).await
}

async fn patch(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items = parse_batch(&body, |r: &UpdateProvisionWatcherRequest, v, p| {
        r.provision_watcher.validate(v, &format!("{p}.provisionWatcher"))
    })?;
    update_each(items, |r| async move {
        let u = r.provision_watcher;
        let mut w: ProvisionWatcher = md.find(u.id.as_deref(), u.name.as_deref()).await?;
        u.apply(&mut w);
        md.replace(w).await
    })
    .await
}

async fn list(md: &Metadata, limits: Limits, q: &QueryMap, filter: Filter) -> ApiResult {
    list_page::<ProvisionWatcher>(md, limits, q, filter, "provisionWatchers").await
}

async fn all(md: web::Data<Metadata>, limits: web::Data<Limits>, q: QueryMap) -> ApiResult {
    list(&md, **limits, &q, label_filter(&q)).await
}

async fn by_service(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    q: QueryMap,
    name: web::Path<String>,
) -> ApiResult {
    list(&md, **limits, &q, Filter { service: Some(name.into_inner()), ..Default::default() }).await
}

async fn by_profile(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    q: QueryMap,
    name: web::Path<String>,
) -> ApiResult {
    list(&md, **limits, &q, Filter { profile: Some(name.into_inner()), ..Default::default() }).await
}

async fn by_name(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    let w: ProvisionWatcher = md.get(&name).await?;
    Ok(ok_with("provisionWatcher", to_value(&w)))
}

async fn delete(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    md.delete::<ProvisionWatcher>(&name).await?;
    Ok(ok())
}
