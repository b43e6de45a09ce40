//! The OpenAPI document of a device service's SDK routes, served at `/api/v3/openapi.json`
//! (a driver's own routes are not in it).

use oxedge_contracts as c;
use oxedge_runtime::openapi::{self, Answer, Body, MoreErrors, Route};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{AdditionalProperties, ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::OpenApi;

use Answer::*;
use Body::*;
use HttpMethod::{Delete, Get, Post, Put};

const FLAGS: &[&str] = &["ds-pushevent", "ds-returnevent"];

/// Every route of the SDK.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    (Get, "/device/name/{name}/{command}", "Reads a command or resource from the device", FLAGS, None, Status(200, "EventResponse")),
    (Put, "/device/name/{name}/{command}", "Writes a command or resources to the device", FLAGS, One("SettingRequest"), Status(200, "BaseResponse")),
    (Post, "/discovery", "Starts a device discovery in the background", &[], None, Status(202, "BaseResponse")),
    (Delete, "/discovery", "Stops the discovery in progress, if any", &[], None, Status(200, "BaseResponse")),
    (Delete, "/discovery/requestId/{requestId}", "Stops the discovery with this request id", &[], None, Status(200, "BaseResponse")),
    (Post, "/profilescan", "Profile scanning: not implemented by any driver (501, as EdgeX answers)", &[], One("ProfileScanRequest"), Status(501, "BaseResponse")),
    (Delete, "/profilescan/device/name/{name}", "Stops a profile scan: not implemented (501)", &[], None, Status(501, "BaseResponse")),
];

/// The error answers a route gives beyond the 400, 404, 409 and 500 every route documents.
const MORE_ERRORS: &[MoreErrors] = &[
    (Get, "/device/name/{name}/{command}", &[405, 423, 503, 504]),
    (Put, "/device/name/{name}/{command}", &[405, 413, 423, 503, 504]),
    (Post, "/discovery", &[423, 503]),
];

fn query_type(_param: &str) -> Type {
    Type::String
}

/// The OpenAPI document of the device SDK's routes.
pub fn document() -> OpenApi {
    let mut doc = openapi::document("device service", ROUTES, query_type, components());
    openapi::add_error_answers(&mut doc, MORE_ERRORS, reason);
    doc
}

fn reason(code: u16) -> &'static str {
    match code {
        405 => "The command cannot be read (write-only) or written (read-only)",
        413 => "The body is too large",
        423 => "The service or device is locked, or the device is down",
        503 => "Discovery is disabled, or the bus or core-metadata is unreachable",
        _ => "The driver did not answer in time",
    }
}

fn components() -> utoipa::openapi::Components {
    let setting = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Resource name → value to write"))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let scan = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("EdgeX's ProfileScanRequest"))
        .property("apiVersion", string())
        .property("requestId", string())
        .property("deviceName", string())
        .property("profileName", string())
        .property("options", ObjectBuilder::new().schema_type(Type::Object))
        .required("deviceName");
    ComponentsBuilder::new()
        .schema_from::<c::BaseResponse>()
        .schema_from::<c::ValueType>()
        .schema_from::<c::Event>()
        .schema_from::<c::Reading>()
        .schema_from::<c::EventResponse>()
        .schema("SettingRequest", setting)
        .schema("ProfileScanRequest", scan)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_referenced_schema_exists() {
        assert_eq!(openapi::problems(&document(), ROUTES), Vec::<String>::new());
        let doc = serde_json::to_value(document()).unwrap();
        let command = &doc["paths"]["/api/v3/device/name/{name}/{command}"];
        assert!(command["put"]["responses"]["423"].is_object() && command["put"]["requestBody"].is_object());
        assert!(command["get"]["responses"]["200"].is_object(), "{command}");
        assert!(doc["paths"]["/api/v3/discovery"]["post"]["responses"]["503"].is_object());
        assert!(doc["paths"]["/api/v3/profilescan"]["post"]["responses"]["501"].is_object());
    }
}
