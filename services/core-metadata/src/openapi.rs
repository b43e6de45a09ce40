//! The OpenAPI document of core-metadata, served at `/api/v3/openapi.json`: every route
//! with its parameters, request body and answers, and the DTO schemas derived by utoipa.

use oxedge_contracts as c;
use oxedge_runtime::openapi::{self, Answer, Body, Route};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{ComponentsBuilder, Type};
use utoipa::openapi::OpenApi;

use Answer::*;
use Body::*;
use HttpMethod::{Delete, Get, Patch, Post, Put};

const PAGED: &[&str] = &["offset", "limit"];
const LABELLED: &[&str] = &["offset", "limit", "labels"];

/// Every core-metadata route.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    (Post, "/deviceservice", "Add device services", &[], Batch("AddDeviceServiceRequest"), Created),
    (Patch, "/deviceservice", "Update device services", &[], Batch("UpdateDeviceServiceRequest"), Updated),
    (Get, "/deviceservice/all", "List device services", LABELLED, None, Status(200, "MultiDeviceServicesResponse")),
    (Get, "/deviceservice/name/{name}", "A device service by name", &[], None, Status(200, "DeviceServiceResponse")),
    (Delete, "/deviceservice/name/{name}", "Delete a device service", &[], None, Status(200, "BaseResponse")),
    (Post, "/deviceprofile", "Add device profiles", &[], Batch("DeviceProfileRequest"), Created),
    (Put, "/deviceprofile", "Replace device profiles", &[], Batch("DeviceProfileRequest"), Updated),
    (Post, "/deviceprofile/uploadfile", "Add a device profile from a YAML file", &[], Upload, Status(201, "BaseWithIdResponse")),
    (Put, "/deviceprofile/uploadfile", "Replace a device profile from a YAML file", &[], Upload, Status(200, "BaseResponse")),
    (Get, "/deviceprofile/all", "List device profiles", LABELLED, None, Status(200, "MultiDeviceProfilesResponse")),
    (Patch, "/deviceprofile/basicinfo", "Update profiles' basic information", &[], Batch("DeviceProfileBasicInfoRequest"), Updated),
    (Get, "/deviceprofile/basicinfo/all", "List profiles' basic information", LABELLED, None, Status(200, "MultiDeviceProfileBasicInfosResponse")),
    (Post, "/deviceprofile/deviceCommand", "Add commands to profiles", &[], Batch("AddDeviceCommandRequest"), Updated),
    (Patch, "/deviceprofile/deviceCommand", "Update commands of profiles", &[], Batch("UpdateDeviceCommandRequest"), Updated),
    (Post, "/deviceprofile/resource", "Add resources to profiles", &[], Batch("AddDeviceResourceRequest"), Updated),
    (Patch, "/deviceprofile/resource", "Update resources of profiles", &[], Batch("UpdateDeviceResourceRequest"), Updated),
    (Get, "/deviceprofile/name/{name}", "A device profile by name", &[], None, Status(200, "DeviceProfileResponse")),
    (Delete, "/deviceprofile/name/{name}", "Delete a device profile", &[], None, Status(200, "BaseResponse")),
    (Patch, "/deviceprofile/name/{name}/tags", "Add tags to resources and commands", &[], One("DeviceProfileTagsRequest"), Status(200, "BaseResponse")),
    (Delete, "/deviceprofile/name/{name}/deviceCommand/{commandName}", "Delete a command", &[], None, Status(200, "BaseResponse")),
    (Delete, "/deviceprofile/name/{name}/resource/{resourceName}", "Delete a resource", &[], None, Status(200, "BaseResponse")),
    (Get, "/deviceprofile/manufacturer/{manufacturer}", "Profiles by manufacturer", PAGED, None, Status(200, "MultiDeviceProfilesResponse")),
    (Get, "/deviceprofile/manufacturer/{manufacturer}/model/{model}", "Profiles by manufacturer and model", PAGED, None, Status(200, "MultiDeviceProfilesResponse")),
    (Get, "/deviceprofile/model/{model}", "Profiles by model", PAGED, None, Status(200, "MultiDeviceProfilesResponse")),
    (Get, "/deviceresource/profile/{profileName}/resource/{resourceName}", "A resource of a profile", &[], None, Status(200, "DeviceResourceResponse")),
    (Post, "/device", "Add devices", &["force", "bypassValidation"], Batch("AddDeviceRequest"), Created),
    (Patch, "/device", "Update devices", &["bypassValidation"], Batch("UpdateDeviceRequest"), Updated),
    (Get, "/device/all", "List devices", &["offset", "limit", "labels", "descendantsOf", "maxLevels"], None, Status(200, "MultiDevicesResponse")),
    (Get, "/device/check/name/{name}", "Whether a device exists", &[], None, Status(200, "BaseResponse")),
    (Get, "/device/name/{name}", "A device by name", &[], None, Status(200, "DeviceResponse")),
    (Delete, "/device/name/{name}", "Delete a device by name", &[], None, Status(200, "BaseResponse")),
    (Get, "/device/id/{id}", "A device by id", &[], None, Status(200, "DeviceResponse")),
    (Delete, "/device/id/{id}", "Delete a device by id", &[], None, Status(200, "BaseResponse")),
    (Get, "/device/profile/name/{name}", "Devices of a profile", PAGED, None, Status(200, "MultiDevicesResponse")),
    (Get, "/device/service/name/{name}", "Devices of a device service", PAGED, None, Status(200, "MultiDevicesResponse")),
    (Post, "/provisionwatcher", "Add provision watchers", &[], Batch("AddProvisionWatcherRequest"), Created),
    (Patch, "/provisionwatcher", "Update provision watchers", &[], Batch("UpdateProvisionWatcherRequest"), Updated),
    (Get, "/provisionwatcher/all", "List provision watchers", LABELLED, None, Status(200, "MultiProvisionWatchersResponse")),
    (Get, "/provisionwatcher/name/{name}", "A provision watcher by name", &[], None, Status(200, "ProvisionWatcherResponse")),
    (Delete, "/provisionwatcher/name/{name}", "Delete a provision watcher", &[], None, Status(200, "BaseResponse")),
    (Get, "/provisionwatcher/service/name/{name}", "Provision watchers of a device service", PAGED, None, Status(200, "MultiProvisionWatchersResponse")),
    (Get, "/provisionwatcher/profile/name/{name}", "Provision watchers of a profile", PAGED, None, Status(200, "MultiProvisionWatchersResponse")),
    (Get, "/uom", "The units of measure", &[], None, Status(200, "UnitsOfMeasureResponse")),
];

fn query_type(param: &str) -> Type {
    match param {
        "offset" | "limit" | "maxLevels" => Type::Integer,
        "force" | "bypassValidation" => Type::Boolean,
        _ => Type::String,
    }
}

/// The OpenAPI document of the core-metadata API.
pub fn document() -> OpenApi {
    openapi::document("core-metadata", ROUTES, query_type, components())
}

/// The schemas of every DTO the routes take or answer with.
fn components() -> utoipa::openapi::Components {
    ComponentsBuilder::new()
        .schema_from::<c::BaseResponse>()
        .schema_from::<c::BaseWithIdResponse>()
        .schema_from::<c::BaseRequest>()
        .schema_from::<c::AdminState>()
        .schema_from::<c::OperatingState>()
        .schema_from::<c::ReadWrite>()
        .schema_from::<c::ValueType>()
        .schema_from::<c::AutoEvent>()
        .schema_from::<c::Retention>()
        .schema_from::<c::DeviceService>()
        .schema_from::<c::UpdateDeviceService>()
        .schema_from::<c::DeviceProfile>()
        .schema_from::<c::DeviceProfileBasicInfo>()
        .schema_from::<c::DeviceResource>()
        .schema_from::<c::ResourceProperties>()
        .schema_from::<c::DeviceCommand>()
        .schema_from::<c::ResourceOperation>()
        .schema_from::<c::Device>()
        .schema_from::<c::UpdateDevice>()
        .schema_from::<c::ProvisionWatcher>()
        .schema_from::<c::DiscoveredDevice>()
        .schema_from::<c::UpdateProvisionWatcher>()
        .schema_from::<c::UpdateDiscoveredDevice>()
        .schema_from::<c::Unit>()
        .schema_from::<c::UnitsOfMeasure>()
        .schema_from::<c::AddDeviceServiceRequest>()
        .schema_from::<c::UpdateDeviceServiceRequest>()
        .schema_from::<c::DeviceProfileRequest>()
        .schema_from::<c::DeviceProfileBasicInfoRequest>()
        .schema_from::<c::UpdateDeviceProfileBasicInfo>()
        .schema_from::<c::AddDeviceResourceRequest>()
        .schema_from::<c::UpdateDeviceResourceRequest>()
        .schema_from::<c::UpdateDeviceResource>()
        .schema_from::<c::AddDeviceCommandRequest>()
        .schema_from::<c::UpdateDeviceCommandRequest>()
        .schema_from::<c::UpdateDeviceCommand>()
        .schema_from::<c::UpdateTags>()
        .schema_from::<c::DeviceProfileTagsRequest>()
        .schema_from::<c::AddDeviceRequest>()
        .schema_from::<c::UpdateDeviceRequest>()
        .schema_from::<c::AddProvisionWatcherRequest>()
        .schema_from::<c::UpdateProvisionWatcherRequest>()
        .schema_from::<c::DeviceServiceResponse>()
        .schema_from::<c::MultiDeviceServicesResponse>()
        .schema_from::<c::DeviceProfileResponse>()
        .schema_from::<c::MultiDeviceProfilesResponse>()
        .schema_from::<c::MultiDeviceProfileBasicInfosResponse>()
        .schema_from::<c::DeviceResourceResponse>()
        .schema_from::<c::DeviceResponse>()
        .schema_from::<c::MultiDevicesResponse>()
        .schema_from::<c::ProvisionWatcherResponse>()
        .schema_from::<c::MultiProvisionWatchersResponse>()
        .schema_from::<c::UnitsOfMeasureResponse>()
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
