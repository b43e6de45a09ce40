//! The EdgeX v3 device service REST API: `/api/v3/device/name/{name}/{command}`.

/// Registers the command routes; handlers read `web::Data<Arc<Service>>`.
pub(crate) fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    let _ = cfg;
    todo!("command routes")
}
