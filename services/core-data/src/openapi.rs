//! The OpenAPI document of core-data, served at `/api/v3/openapi.json`.

use oxedge_contracts as c;
use oxedge_runtime::openapi::{self, Answer, Body, Route};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{ComponentsBuilder, Type};
use utoipa::openapi::OpenApi;

use Answer::*;
use Body::*;
use HttpMethod::{Delete, Get, Post};

const EVENTS: &[&str] = &["offset", "limit", "numeric"];
const READINGS: &[&str] = &["offset", "limit", "numeric", "aggregateFunc"];

/// Every core-data route.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    (Post, "/event/{serviceName}/{profileName}/{deviceName}/{sourceName}", "Add an event", &[], One("AddEventRequest"), Status(201, "BaseWithIdResponse")),
    (Get, "/event/all", "Events, newest first", EVENTS, None, Status(200, "MultiEventsResponse")),
    (Get, "/event/id/{id}", "An event by id", &["numeric"], None, Status(200, "EventResponse")),
    (Delete, "/event/id/{id}", "Delete an event", &[], None, Status(200, "BaseResponse")),
    (Get, "/event/count", "How many events are stored", &[], None, Status(200, "CountResponse")),
    (Get, "/event/count/device/name/{name}", "How many events of a device are stored", &[], None, Status(200, "CountResponse")),
    (Get, "/event/device/name/{name}", "Events of a device", EVENTS, None, Status(200, "MultiEventsResponse")),
    (Delete, "/event/device/name/{name}", "Delete the events of a device", &[], None, Status(202, "BaseResponse")),
    (Get, "/event/start/{start}/end/{end}", "Events in a time range", EVENTS, None, Status(200, "MultiEventsResponse")),
    (Delete, "/event/age/{age}", "Delete events older than an age", &[], None, Status(202, "BaseResponse")),
    (Get, "/reading/all", "Readings, newest first", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/count", "How many readings are stored", &[], None, Status(200, "CountResponse")),
    (Get, "/reading/count/device/name/{name}", "How many readings of a device are stored", &[], None, Status(200, "CountResponse")),
    (Get, "/reading/device/name/{name}", "Readings of a device", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/resourceName/{resourceName}", "Readings of a resource", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/device/name/{deviceName}/resourceName/{resourceName}", "Readings of a device's resource", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/start/{start}/end/{end}", "Readings in a time range", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/resourceName/{resourceName}/start/{start}/end/{end}", "Readings of a resource in a time range", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/device/name/{deviceName}/resourceName/{resourceName}/start/{start}/end/{end}", "Readings of a device's resource in a time range", READINGS, None, Status(200, "MultiReadingsResponse")),
    (Get, "/reading/device/name/{deviceName}/start/{start}/end/{end}", "Readings of a device in a time range, optionally of the resources named in the body", READINGS, None, Status(200, "MultiReadingsResponse")),
];

fn query_type(param: &str) -> Type {
    match param {
        "offset" | "limit" => Type::Integer,
        "numeric" => Type::Boolean,
        _ => Type::String,
    }
}

/// The OpenAPI document of the core-data API.
pub fn document() -> OpenApi {
    openapi::document("core-data", ROUTES, query_type, components())
}

fn components() -> utoipa::openapi::Components {
    ComponentsBuilder::new()
        .schema_from::<c::BaseResponse>()
        .schema_from::<c::BaseWithIdResponse>()
        .schema_from::<c::BaseRequest>()
        .schema_from::<c::CountResponse>()
        .schema_from::<c::ValueType>()
        .schema_from::<c::Event>()
        .schema_from::<c::Reading>()
        .schema_from::<c::AddEventRequest>()
        .schema_from::<c::EventResponse>()
        .schema_from::<c::MultiEventsResponse>()
        .schema_from::<c::MultiReadingsResponse>()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_referenced_schema_exists() {
        assert_eq!(openapi::problems(&document(), ROUTES), Vec::<String>::new());
    }
}
