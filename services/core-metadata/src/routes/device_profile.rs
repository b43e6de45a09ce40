//! `/deviceprofile` and `/deviceresource`: profiles, their resources, commands and tags.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;
use oxedge_contracts::{
    AddDeviceCommandRequest, AddDeviceResourceRequest, BaseResponse, BaseWithIdResponse, Device, DeviceProfile,
    DeviceProfileBasicInfoRequest, DeviceProfileRequest, DeviceProfileTagsRequest, EdgeXError, ErrorKind,
    UpdateDeviceCommandRequest, UpdateDeviceResourceRequest, Validator,
};
use oxedge_runtime::{json, ApiResult};

use super::{
    add_each, check_range, each, label_filter, ok, ok_with, page_with, paging, parse_batch, update_each, Limits,
    QueryMap,
};
use crate::metadata::{to_value, Metadata};
use crate::store::Filter;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/deviceprofile", web::post().to(add))
        .route("/deviceprofile", web::put().to(put))
        .route("/deviceprofile/uploadfile", web::post().to(upload_add))
        .route("/deviceprofile/uploadfile", web::put().to(upload_put))
        .route("/deviceprofile/all", web::get().to(all))
        .route("/deviceprofile/basicinfo", web::patch().to(patch_basic_info))
        .route("/deviceprofile/basicinfo/all", web::get().to(all_basic_info))
        .route("/deviceprofile/deviceCommand", web::post().to(add_command))
        .route("/deviceprofile/deviceCommand", web::patch().to(patch_command))
        .route("/deviceprofile/resource", web::post().to(add_resource))
        .route("/deviceprofile/resource", web::patch().to(patch_resource))
        .route("/deviceprofile/name/{name}", web::get().to(by_name))
        .route("/deviceprofile/name/{name}", web::delete().to(delete))
        .route("/deviceprofile/name/{name}/tags", web::patch().to(patch_tags))
        .route("/deviceprofile/name/{name}/deviceCommand/{command}", web::delete().to(delete_command))
        .route("/deviceprofile/name/{name}/resource/{resource}", web::delete().to(delete_resource))
        .route("/deviceprofile/manufacturer/{manufacturer}", web::get().to(by_manufacturer))
        .route("/deviceprofile/manufacturer/{manufacturer}/model/{model}", web::get().to(by_manufacturer_model))
        .route("/deviceprofile/model/{model}", web::get().to(by_model))
        .route("/deviceresource/profile/{profile}/resource/{resource}", web::get().to(resource));
}

fn validate_profile(md: &Metadata, p: &DeviceProfile, v: &mut Validator, prefix: &str) {
    p.validate(v, prefix);
    md.check_units(p, v, prefix);
}

async fn add(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let items = parse_batch(&body, |r: &DeviceProfileRequest, v, p| {
        validate_profile(&md, &r.profile, v, &format!("{p}.profile"))
    })?;
    add_each(items, |r| md.add(r.profile)).await
}

/// Replaces a profile (found by id, else by name), keeping its id and creation time.
async fn replace_profile(md: &Metadata, mut new: DeviceProfile) -> Result<(), EdgeXError> {
    let id = (!new.info.id.is_empty()).then(|| new.info.id.clone());
    let old: DeviceProfile = md.find(id.as_deref(), Some(&new.info.name)).await?;
    new.info.id = old.info.id;
    new.created = old.created;
    md.check_profile_change(&new).await?;
    md.replace(new).await
}

async fn put(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let items = parse_batch(&body, |r: &DeviceProfileRequest, v, p| {
        validate_profile(&md, &r.profile, v, &format!("{p}.profile"))
    })?;
    update_each(items, |r| replace_profile(&md, r.profile)).await
}

/// Reads a profile from an upload: a multipart form with a `file` field, or a raw YAML body.
async fn read_upload(
    md: &Metadata,
    limits: Limits,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<DeviceProfile, EdgeXError> {
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let bytes = if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::new(req.headers(), payload);
        let mut file = None;
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| EdgeXError::invalid(format!("malformed multipart body: {e}")))?;
            let is_file = field.name() == Some("file");
            let mut buf = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| EdgeXError::invalid(format!("malformed multipart body: {e}")))?;
                if buf.len() + chunk.len() > limits.max_request_size {
                    return Err(too_large(limits));
                }
                buf.extend_from_slice(&chunk);
            }
            if is_file {
                file = Some(buf);
            }
        }
        file.ok_or_else(|| EdgeXError::invalid("file: the multipart form has no 'file' field"))?
    } else if content_type.contains("yaml") || content_type.starts_with("text/plain") || content_type.is_empty() {
        let mut buf = Vec::new();
        let mut payload = payload;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| EdgeXError::invalid(format!("reading the body failed: {e}")))?;
            if buf.len() + chunk.len() > limits.max_request_size {
                return Err(too_large(limits));
            }
            buf.extend_from_slice(&chunk);
        }
        buf
    } else {
        return Err(EdgeXError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Content-Type '{content_type}': send multipart/form-data with a 'file' field, or a YAML body"),
        ));
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EdgeXError::invalid("file: the profile file is empty"));
    }
    let profile: DeviceProfile = oxedge_contracts::from_yaml(&bytes)?;
    let mut v = Validator::new();
    validate_profile(md, &profile, &mut v, "profile");
    v.finish()?;
    Ok(profile)
}

fn too_large(limits: Limits) -> EdgeXError {
    EdgeXError::new(ErrorKind::PayloadTooLarge, format!("the body exceeds {} bytes", limits.max_request_size))
}

async fn upload_add(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    let profile = read_upload(&md, **limits, &req, payload).await?;
    let id = md.add(profile).await?;
    Ok(json(201, &BaseWithIdResponse::created("", id)))
}

async fn upload_put(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    let profile = read_upload(&md, **limits, &req, payload).await?;
    replace_profile(&md, profile).await?;
    Ok(ok())
}

async fn list(md: &Metadata, limits: Limits, q: &QueryMap, filter: Filter) -> ApiResult {
    let page = paging(q, limits)?;
    let (mut items, total) = md.list::<DeviceProfile>(&filter, page).await?;
    check_range(total, page)?;
    md.count_linked_devices(&mut items).await?;
    Ok(page_with("profiles", &items, total))
}

async fn all(md: web::Data<Metadata>, limits: web::Data<Limits>, q: QueryMap) -> ApiResult {
    list(&md, **limits, &q, label_filter(&q)).await
}

async fn by_manufacturer(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    q: QueryMap,
    m: web::Path<String>,
) -> ApiResult {
    list(&md, **limits, &q, Filter { manufacturer: Some(m.into_inner()), ..Default::default() }).await
}

async fn by_model(md: web::Data<Metadata>, limits: web::Data<Limits>, q: QueryMap, m: web::Path<String>) -> ApiResult {
    list(&md, **limits, &q, Filter { model: Some(m.into_inner()), ..Default::default() }).await
}

async fn by_manufacturer_model(
    md: web::Data<Metadata>,
    limits: web::Data<Limits>,
    q: QueryMap,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (manufacturer, model) = path.into_inner();
    list(&md, **limits, &q, Filter { manufacturer: Some(manufacturer), model: Some(model), ..Default::default() }).await
}

async fn all_basic_info(md: web::Data<Metadata>, limits: web::Data<Limits>, q: QueryMap) -> ApiResult {
    let page = paging(&q, **limits)?;
    let (mut items, total) = md.list::<DeviceProfile>(&label_filter(&q), page).await?;
    check_range(total, page)?;
    md.count_linked_devices(&mut items).await?;
    let infos: Vec<_> = items.into_iter().map(|p| p.info).collect();
    Ok(page_with("profiles", &infos, total))
}

async fn by_name(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    let mut p: DeviceProfile = md.get(&name).await?;
    md.count_linked_devices(std::slice::from_mut(&mut p)).await?;
    Ok(ok_with("profile", to_value(&p)))
}

async fn delete(md: web::Data<Metadata>, name: web::Path<String>) -> ApiResult {
    md.delete::<DeviceProfile>(&name).await?;
    Ok(ok())
}

async fn patch_basic_info(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items = parse_batch(&body, |r: &DeviceProfileBasicInfoRequest, v, p| {
        let b = &r.basicinfo;
        let prefix = format!("{p}.basicinfo");
        oxedge_contracts::validate::check_identity(v, &prefix, b.id.as_deref(), b.name.as_deref());
        if let Some(n) = &b.name {
            v.name(&format!("{prefix}.name"), n);
        }
        if let Some(l) = &b.labels {
            v.labels(&format!("{prefix}.labels"), l);
        }
    })?;
    update_each(items, |r| async move {
        let b = r.basicinfo;
        let mut p: DeviceProfile = md.find(b.id.as_deref(), b.name.as_deref()).await?;
        if let Some(n) = b.name {
            p.info.name = n;
        }
        if let Some(d) = b.description {
            p.info.description = d;
        }
        if let Some(m) = b.manufacturer {
            p.info.manufacturer = m;
        }
        if let Some(m) = b.model {
            p.info.model = m;
        }
        if let Some(l) = b.labels {
            p.info.labels = l;
        }
        md.replace(p).await
    })
    .await
}

async fn add_resource(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items = parse_batch(&body, |r: &AddDeviceResourceRequest, v, p| {
        v.name(&format!("{p}.profileName"), &r.profile_name);
        r.resource.validate(v, &format!("{p}.resource"));
    })?;
    each(items, 201, |r| {
        edit_profile(md, r.profile_name, |p| {
            if p.has_source(&r.resource.name) {
                return Err(EdgeXError::duplicate("resource or command", &r.resource.name));
            }
            p.device_resources.push(r.resource);
            Ok(())
        })
    })
    .await
}

async fn patch_resource(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items = parse_batch(&body, |r: &UpdateDeviceResourceRequest, v, p| {
        v.name(&format!("{p}.profileName"), &r.profile_name);
        v.name(&format!("{p}.resource.name"), &r.resource.name);
    })?;
    update_each(items, |r| {
        let u = r.resource;
        edit_profile(md, r.profile_name, move |p| {
            let res = p
                .device_resources
                .iter_mut()
                .find(|x| x.name == u.name)
                .ok_or_else(|| EdgeXError::not_found("device resource", &u.name))?;
            if let Some(d) = u.description {
                res.description = d;
            }
            if let Some(h) = u.is_hidden {
                res.is_hidden = h;
            }
            Ok(())
        })
    })
    .await
}

async fn add_command(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items = parse_batch(&body, |r: &AddDeviceCommandRequest, v, p| {
        v.name(&format!("{p}.profileName"), &r.profile_name);
        v.name(&format!("{p}.deviceCommand.name"), &r.device_command.name);
    })?;
    each(items, 201, |r| {
        edit_profile(md, r.profile_name, |p| {
            if p.has_source(&r.device_command.name) {
                return Err(EdgeXError::duplicate("resource or command", &r.device_command.name));
            }
            p.device_commands.push(r.device_command);
            Ok(())
        })
    })
    .await
}

async fn patch_command(md: web::Data<Metadata>, body: web::Bytes) -> ApiResult {
    let md = md.get_ref();
    let items = parse_batch(&body, |r: &UpdateDeviceCommandRequest, v, p| {
        v.name(&format!("{p}.profileName"), &r.profile_name);
        v.name(&format!("{p}.deviceCommand.name"), &r.device_command.name);
    })?;
    update_each(items, |r| {
        let u = r.device_command;
        edit_profile(md, r.profile_name, move |p| {
            let cmd = p
                .device_commands
                .iter_mut()
                .find(|c| c.name == u.name)
                .ok_or_else(|| EdgeXError::not_found("device command", &u.name))?;
            if let Some(h) = u.is_hidden {
                cmd.is_hidden = h;
            }
            Ok(())
        })
    })
    .await
}

/// Loads the profile `name`, applies `change`, checks the result as a whole and stores it.
async fn edit_profile(
    md: &Metadata,
    name: String,
    change: impl FnOnce(&mut DeviceProfile) -> Result<(), EdgeXError>,
) -> Result<(), EdgeXError> {
    let mut p: DeviceProfile = md.get(&name).await?;
    change(&mut p)?;
    let mut v = Validator::new();
    validate_profile(md, &p, &mut v, "profile");
    v.finish()?;
    md.replace(p).await
}

/// Devices of profile `profile` whose auto events read `source`.
async fn devices_reading(md: &Metadata, profile: &str, source: &str) -> Result<Vec<String>, EdgeXError> {
    let filter = Filter { profile: Some(profile.to_owned()), ..Default::default() };
    let devices: Vec<Device> = md.all(&filter).await?;
    Ok(devices.into_iter().filter(|d| d.auto_events.iter().any(|a| a.source_name == source)).map(|d| d.name).collect())
}

async fn delete_resource(md: web::Data<Metadata>, path: web::Path<(String, String)>) -> ApiResult {
    let (name, resource) = path.into_inner();
    let mut p: DeviceProfile = md.get(&name).await?;
    if p.resource(&resource).is_none() {
        return Err(EdgeXError::not_found("device resource", &resource).into());
    }
    if let Some(c) =
        p.device_commands.iter().find(|c| c.resource_operations.iter().any(|o| o.device_resource == resource))
    {
        return Err(EdgeXError::conflict(format!("resource '{resource}' is used by command '{}'", c.name)).into());
    }
    let users = devices_reading(&md, &name, &resource).await?;
    if !users.is_empty() {
        return Err(EdgeXError::conflict(format!("resource '{resource}' is read by devices {users:?}")).into());
    }
    p.device_resources.retain(|r| r.name != resource);
    md.replace(p).await?;
    Ok(ok())
}

async fn delete_command(md: web::Data<Metadata>, path: web::Path<(String, String)>) -> ApiResult {
    let (name, command) = path.into_inner();
    let mut p: DeviceProfile = md.get(&name).await?;
    if p.command(&command).is_none() {
        return Err(EdgeXError::not_found("device command", &command).into());
    }
    let users = devices_reading(&md, &name, &command).await?;
    if !users.is_empty() {
        return Err(EdgeXError::conflict(format!("command '{command}' is read by devices {users:?}")).into());
    }
    p.device_commands.retain(|c| c.name != command);
    md.replace(p).await?;
    Ok(ok())
}

async fn patch_tags(md: web::Data<Metadata>, name: web::Path<String>, body: web::Bytes) -> ApiResult {
    let req: DeviceProfileTagsRequest = oxedge_contracts::from_json(&body)?;
    let mut v = Validator::new();
    oxedge_contracts::check_api_version(&mut v, "", &req.base);
    v.finish()?;
    let mut p: DeviceProfile = md.get(&name).await?;
    for t in &req.device_resources {
        let r = p
            .device_resources
            .iter_mut()
            .find(|r| r.name == t.name)
            .ok_or_else(|| EdgeXError::not_found("device resource", &t.name))?;
        r.tags.extend(t.tags.clone());
    }
    for t in &req.device_commands {
        let c = p
            .device_commands
            .iter_mut()
            .find(|c| c.name == t.name)
            .ok_or_else(|| EdgeXError::not_found("device command", &t.name))?;
        c.tags.extend(t.tags.clone());
    }
    md.replace(p).await?;
    Ok(json(200, &BaseResponse::new(req.base.request_id, 200)))
}

async fn resource(md: web::Data<Metadata>, path: web::Path<(String, String)>) -> ApiResult {
    let (profile, resource) = path.into_inner();
    let p: DeviceProfile = md.get(&profile).await?;
    let r = p.resource(&resource).ok_or_else(|| EdgeXError::not_found("device resource", &resource))?;
    Ok(ok_with("resource", to_value(r)))
}
