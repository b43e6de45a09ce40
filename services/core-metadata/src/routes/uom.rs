//! `/uom`: the units of measure profiles may use.

use actix_web::web;
use oxedge_runtime::ApiResult;

use super::ok_with;
use crate::metadata::{to_value, Metadata};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/uom", web::get().to(get));
}

async fn get(md: web::Data<Metadata>) -> ApiResult {
    Ok(ok_with("uom", to_value(md.uom())))
}
