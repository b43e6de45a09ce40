//! `/device`: add, update, query and delete devices.

use std::collections::HashMap;

use actix_web::web;
use oxedge_contracts::{AddDeviceRequest, Device, EdgeXError, UpdateDeviceRequest};
use oxedge_runtime::ApiResult;

use super::{
    add_each, check_range, flag, label_filter, list_page, ok, ok_with, page_with, paging, parse_batch, update_each,
    Limits, QueryMap,
};
use crate::metadata::{to_value, Metadata};
use crate::store::Filter;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/device", web::post().to(add))
        .route("/device", web::patch().to(patch))
        .route("/device/all", web::get().to(all))
        .route("/device/check/name/{name}", web::get().to(check))
        .route("/device/name/{name}", web::get().to(by_name))
        .route("/device/name/{name}", web::delete().to(delete))
        .route("/device/id/{id}", web::get().to(by_id))
        .route("/device/id/{id}", web::delete().to(delete_by_id))
        .route("/device/profile/name/{name}", web::get().to(by_profile))
        .route("/device/service/name/{name}", web::get().to(by_service));
}

async fn add_one(md: &Metadata, d: Device, force: bool) -> Result<String, EdgeXError> {
    md.check_device_fits_profile(&d, "device").await?;
    if force {
        if let Ok(old) = md.get::<Device>(&d.name).await {
            let mut d = d;
            d.id = old.id.clone();
            d.created = old.created;
            md.check_parent(&d, "device").await?;
            md.replace(d).await?;
            return Ok(old.id);
        }
    }
    md.add(d).await
}

async fn add(md: web::Data<Metadata>, q: QueryMap, body: web::Bytes) -> ApiResult {
    let force = flag(&q, "force")?;
    flag(&q, "bypassValidation")?;
    let items = parse_batch(&body, |r: &AddDeviceRequest, v, p| r.device.validate(v, &format!("{p}.device")))?;
    add_each(items, |r| add_one(&md, r.device, force)).await
}

async fn patch(md: web::Data<Metadata>, q: QueryMap, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    flag(&q, "bypassValidation")?;
    let items = parse_batch(&body, |r: &UpdateDeviceRequest, v, p| r.device.validate(v, &format!("{p}.device")))?;
    update_each(items, |r| async move {
        let u = r.device;
        let mut d: Device = md.find(u.id.as_deref(), u.name.as_deref()).await?;
        u.apply(&mut d);
        md.check_parent(&d, "device").await?;
        md.check_device_fits_profile(&d, "device").await?;
        md.replace(d).await
    })
    .await
}

async fn list(md: &Metadata, limits: Limits, q: &HashMap<String, String>, filter: Filter) -> ApiResult {
    list_page::<Device>(md, limits, q, filter, "devices").await
}

async fn all(md: web::Data<Metadata>, limits: web::Data<Limits>, q: QueryMap) -> ApiResult {
    // As EdgeX: an empty `descendantsOf` is no tree query, and an unknown root has no
    // descendants (200, none), not a 404.
    let Some(root) = q.get("descendantsOf").filter(|r| !r.is_empty()) else {
        return list(&md, **limits, &q, label_filter(&q)).await;
    };
    let max_levels = match q.get("maxLevels") {
        None => 0,
        Some(s) => {
            s.parse::<usize>().map_err(|_| EdgeXError::invalid(format!("maxLevels: '{s}' is not an integer ≥ 0")))?
        }
    };
    let page = paging(&q, **limits)?;
    let labels = label_filter(&q).labels;
    let mut found = descendants(&md, root, max_levels).await?;
    if !labels.is_empty() {
        found.retain(|d| d.labels.iter().any(|l| labels.contains(l)));
    }
    let total = found.len() as u64;
    check_range(total, page)?;
    let items: Vec<_> = found.into_iter().skip(page.offset).take(page.limit.unwrap_or(usize::MAX)).collect();
    Ok(page_with("devices", &items, total))
}

/// The devices below `root`, level by level, at most `max_levels` deep (0: all levels).
async fn descendants(md: &Metadata, root: &str, max_levels: usize) -> Result<Vec<Device>, EdgeXError> {
    let mut out = Vec::new();
    let mut level = vec![root.to_owned()];
    // Guards against cycles stored before parents were checked.
    let mut seen = std::collections::HashSet::from([root.to_owned()]);
    let mut depth = 0;
    while !level.is_empty() && (max_levels == 0 || depth < max_levels) {
        let mut next = Vec::new();
        for parent in &level {
            let filter = Filter { parent: Some(parent.clone()), ..Default::default() };
            let children: Vec<Device> = md.all(&filter).await?;
            for child in children.into_iter().filter(|c| seen.insert(c.name.clone())) {
                next.push(child.name.clone());
                out.push(child);
            }
        }
        level = next;
        depth += 1;
    }
    Ok(out)
}

async fn check(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    md.get::<Device>(&name).await?;
    Ok(ok())
}

async fn by_name(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    let d: Device = md.get(&name).await?;
    Ok(ok_with("device", to_value(&d)))
}

async fn by_id(md: web::Data<Metadata>, id: web::Path<String>) -> ApiResult {
    let d: Device = md.get_by_id(&id).await?;
    Ok(ok_with("device", to_value(&d)))
}

async fn delete(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    md.delete::<Device>(&name).await?;
    Ok(ok())
}

async fn delete_by_id(md: web::Data<Metadata>, id: web::Path<String>) -> ApiResult {
    md.delete_by_id::<Device>(&id).await?;
    Ok(ok())
}

async fn by_profile(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    q: QueryMap,
    name: web::Path<String>,
) -> ApiResult {
    list(&md, **limits, &q, Filter { profile: Some(name.into_inner()), ..Default::default() }).await
}

async fn by_service(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    q: QueryMap,
    name: web::Path<String>,
) -> ApiResult {
    list(&md, **limits, &q, Filter { service: Some(name.into_inner()), ..Default::default() }).await
}
