//! The OpenAPI document of core-command, served at `/api/v3/openapi.json`.

use oxedge_contracts as c;
use oxedge_runtime::openapi::{self, Answer, Body, MoreErrors, Route};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{AdditionalProperties, ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::OpenApi;

use Answer::*;
use Body::*;
use HttpMethod::{Get, Put};

const FLAGS: &[&str] = &["ds-pushevent", "ds-returnevent"];

/// Every core-command route.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    (Get, "/device/all", "Every device's commands", &["offset", "limit", "labels"], None, Status(200, "MultiDeviceCoreCommandsResponse")),
    (Get, "/device/name/{name}", "A device's commands", &[], None, Status(200, "DeviceCoreCommandResponse")),
    (Get, "/device/name/{name}/{command}", "Reads a command from the device, through its device service", FLAGS, None, Status(200, "EventResponse")),
    (Put, "/device/name/{name}/{command}", "Writes a command to the device, through its device service", FLAGS, One("SettingRequest"), Status(200, "BaseResponse")),
];

/// The error answers a route gives beyond the 400, 404, 409 and 500 every route documents.
const MORE_ERRORS: &[MoreErrors] = &[
    (Get, "/device/all", &[416, 503, 504]),
    (Get, "/device/name/{name}", &[503, 504]),
    (Get, "/device/name/{name}/{command}", &[405, 423, 503, 504]),
    (Put, "/device/name/{name}/{command}", &[405, 413, 423, 503, 504]),
];

fn query_type(param: &str) -> Type {
    match param {
        "offset" | "limit" => Type::Integer,
        _ => Type::String,
    }
}

/// The OpenAPI document of the core-command API.
pub fn document() -> OpenApi {
    let mut doc = openapi::document("core-command", ROUTES, query_type, components());
    openapi::add_error_answers(&mut doc, MORE_ERRORS, reason);
    doc
}

fn reason(code: u16) -> &'static str {
    match code {
        405 => "The command cannot be read (write-only) or written (read-only)",
        413 => "The body is too large",
        416 => "offset is beyond the devices",
        423 => "The device or its device service is locked, or the device is down",
        503 => "core-metadata or the device service is unreachable",
        _ => "core-metadata or the device service did not answer in time",
    }
}

fn components() -> utoipa::openapi::Components {
    let setting = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Resource name → value to write"))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    ComponentsBuilder::new()
        .schema_from::<c::BaseResponse>()
        .schema_from::<c::ValueType>()
        .schema_from::<c::CoreCommandParameter>()
        .schema_from::<c::CoreCommand>()
        .schema_from::<c::DeviceCoreCommand>()
        .schema_from::<c::DeviceCoreCommandResponse>()
        .schema_from::<c::MultiDeviceCoreCommandsResponse>()
        .schema_from::<c::Event>()
        .schema_from::<c::Reading>()
        .schema_from::<c::EventResponse>()
        .schema("SettingRequest", setting)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_referenced_schema_exists() {
        assert_eq!(openapi::problems(&document(), ROUTES), Vec::<String>::new());
        let doc = serde_json::to_value(document()).unwrap();
        let put = &doc["paths"]["/api/v3/device/name/{name}/{command}"]["put"];
        assert!(put["responses"]["423"].is_object() && put["requestBody"].is_object(), "{put}");
        assert!(doc["paths"]["/api/v3/device/name/{name}/{command}"]["get"].is_object());
    }
}
