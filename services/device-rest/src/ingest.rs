//! `POST /api/v3/resource/{deviceName}/{resourceName}`: a device pushes one reading.
//!
//! As EdgeX's device-rest: the device must be one of the service's (404 `Device 'x' not
//! found`), the resource one of its profile's device resources (404 `Resource 'y' not found`;
//! a device command's name is not one), the body is read as [`crate::convert`] says (400
//! naming the resource and the expected type when it cannot be) and the value is published as
//! an event whose source is the resource, through the SDK's push path (the profile's
//! transforms, assertion and tags apply). The answer is 200 with no body.
//!
//! Where EdgeX does less: a body over `service.max_request_size` is 413; a value outside the
//! resource's `minimum`/`maximum`, or whose reading the profile refuses (a transform
//! overflows, the `assertion` fails), is 400; a write-only (`W`) resource takes no readings (405,
//! as a GET of it); 200 is answered once the event is on the bus, so that an acknowledged
//! reading is never lost (EdgeX answers first and publishes later); errors are EdgeX's JSON
//! error body.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use oxedge_contracts::{EdgeXError, ErrorKind};
use oxedge_device_sdk::{value, CommandValue};
use oxedge_runtime::ApiResult;

use crate::driver::Inner;

/// The route, under `/api/v3` (EdgeX's `apiResourceRoute`).
pub(crate) const ROUTE: &str = "/resource/{deviceName}/{resourceName}";

/// Registers the route; the handler reads `web::Data<Arc<Inner>>`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, inner: Arc<Inner>) {
    cfg.service(web::resource(ROUTE).app_data(web::Data::new(inner)).post(post));
}

async fn post(
    inner: web::Data<Arc<Inner>>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult {
    let (device, resource) = path.into_inner();
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match ingest(&inner, &device, &resource, content_type, &body).await {
        Ok(()) => Ok(HttpResponse::Ok().finish()),
        Err(error) => {
            tracing::warn!(%device, %resource, status = error.status_code(), %error, "Incoming reading ignored.");
            Err(error.into())
        }
    }
}

/// Checks and publishes one reading of `resource` of `device`.
async fn ingest(
    inner: &Inner,
    device: &str,
    resource: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(), EdgeXError> {
    let sdk = inner.sdk()?;
    let not_found = |what: String| EdgeXError::new(ErrorKind::EntityDoesNotExist, what);
    let dev = sdk.device(device).ok_or_else(|| not_found(format!("Device '{device}' not found")))?;
    let profile = sdk.profile(&dev.profile_name).ok_or_else(|| {
        not_found(format!(
            "Resource '{resource}' not found: profile {} of device {device} is not loaded",
            dev.profile_name
        ))
    })?;
    let res = profile.resource(resource).ok_or_else(|| {
        not_found(format!("Resource '{resource}' not found in profile {} of device {device}", dev.profile_name))
    })?;
    if !res.properties.read_write.readable() {
        return Err(EdgeXError::new(
            ErrorKind::MethodNotAllowed,
            format!("DeviceResource {resource} of device {device} is marked as write-only: it takes no readings"),
        ));
    }
    let value = crate::convert::from_body(res, content_type, body).map_err(|why| {
        EdgeXError::invalid(format!(
            "DeviceResource {resource} of device {device} (valueType {}): {why}",
            res.properties.value_type
        ))
    })?;
    value::check_limits(res, &value).map_err(|e| EdgeXError::invalid(format!("device {device}: {}", e.message)))?;
    sdk.push(device, resource, vec![CommandValue::new(resource, value)]).await.map_err(|e| match e.kind {
        // The reading the value makes is refused (a transform overflows, the assertion fails):
        // the value posted is at fault.
        ErrorKind::ServerError => EdgeXError::invalid(format!("device {device}: {}", e.message)),
        _ => e,
    })
}
