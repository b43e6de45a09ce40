//! Request and response bodies of the core-metadata and core-data APIs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::device::{Device, UpdateDevice};
use crate::device_profile::{DeviceCommand, DeviceProfile, DeviceProfileBasicInfo, DeviceResource};
use crate::device_service::{DeviceService, UpdateDeviceService};
use crate::envelope::{BaseRequest, BaseResponse};
use crate::event::{Event, Reading};
use crate::provision_watcher::{ProvisionWatcher, UpdateProvisionWatcher};
use crate::uom::UnitsOfMeasure;

macro_rules! request {
    ($(#[$doc:meta])* $name:ident { $field:ident $(alias $alias:literal)? : $ty:ty }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// `apiVersion` and `requestId`.
            #[serde(flatten)]
            pub base: BaseRequest,
            #[allow(missing_docs)]
            $(#[serde(alias = $alias)])?
            pub $field: $ty,
        }
    };
}

request!(/// `POST /deviceservice` item.
    AddDeviceServiceRequest { service: DeviceService });
request!(/// `PATCH /deviceservice` item.
    UpdateDeviceServiceRequest { service: UpdateDeviceService });
request!(/// `POST /deviceprofile` and `PUT /deviceprofile` item.
    DeviceProfileRequest { profile: DeviceProfile });
request!(/// `PATCH /deviceprofile/basicinfo` item.
    DeviceProfileBasicInfoRequest { basicinfo alias "basicInfo": UpdateDeviceProfileBasicInfo });
request!(/// `POST /device` item.
    AddDeviceRequest { device: Device });
request!(/// `PATCH /device` item.
    UpdateDeviceRequest { device: UpdateDevice });
request!(/// `POST /provisionwatcher` item.
    AddProvisionWatcherRequest { provision_watcher alias "provisionwatcher": ProvisionWatcher });
request!(/// `PATCH /provisionwatcher` item.
    UpdateProvisionWatcherRequest { provision_watcher alias "provisionwatcher": UpdateProvisionWatcher });
request!(/// `POST /event/{service}/{profile}/{device}/{source}` body, and the payload of an event on the bus.
    AddEventRequest { event: Event });

/// `PATCH /deviceprofile/basicinfo`: fields present are changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeviceProfileBasicInfo {
    /// Identifies the profile (or `name`).
    pub id: Option<String>,
    /// Identifies the profile (or `id`); with `id`, renames it.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New manufacturer.
    pub manufacturer: Option<String>,
    /// New model.
    pub model: Option<String>,
    /// New labels.
    pub labels: Option<Vec<String>>,
}

/// `POST /deviceprofile/resource` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddDeviceResourceRequest {
    /// `apiVersion` and `requestId`.
    #[serde(flatten)]
    pub base: BaseRequest,
    /// The profile to add to.
    pub profile_name: String,
    /// The new resource.
    pub resource: DeviceResource,
}

/// `PATCH /deviceprofile/resource`: only description and isHidden change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeviceResource {
    /// The resource to change.
    pub name: String,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub is_hidden: Option<bool>,
}

/// `PATCH /deviceprofile/resource` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeviceResourceRequest {
    /// `apiVersion` and `requestId`.
    #[serde(flatten)]
    pub base: BaseRequest,
    /// The profile holding the resource.
    pub profile_name: String,
    /// What to change.
    pub resource: UpdateDeviceResource,
}

/// `POST /deviceprofile/deviceCommand` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddDeviceCommandRequest {
    /// `apiVersion` and `requestId`.
    #[serde(flatten)]
    pub base: BaseRequest,
    /// The profile to add to.
    pub profile_name: String,
    /// The new command (EdgeX's examples also spell it `devicecommand`).
    #[serde(alias = "devicecommand")]
    pub device_command: DeviceCommand,
}

/// `PATCH /deviceprofile/deviceCommand`: only isHidden changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeviceCommand {
    /// The command to change.
    pub name: String,
    /// New visibility.
    pub is_hidden: Option<bool>,
}

/// `PATCH /deviceprofile/deviceCommand` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeviceCommandRequest {
    /// `apiVersion` and `requestId`.
    #[serde(flatten)]
    pub base: BaseRequest,
    /// The profile holding the command.
    pub profile_name: String,
    /// What to change (EdgeX's examples also spell it `devicecommand`).
    #[serde(alias = "devicecommand")]
    pub device_command: UpdateDeviceCommand,
}

/// Tags to add to one resource or command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTags {
    /// Resource or command name.
    pub name: String,
    /// Tags to add or replace.
    pub tags: Map<String, Value>,
}

/// `PATCH /deviceprofile/name/{name}/tags` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProfileTagsRequest {
    /// `apiVersion` and `requestId`.
    #[serde(flatten)]
    pub base: BaseRequest,
    /// Tags per resource.
    #[serde(default)]
    pub device_resources: Vec<UpdateTags>,
    /// Tags per command.
    #[serde(default)]
    pub device_commands: Vec<UpdateTags>,
}

macro_rules! response {
    ($(#[$doc:meta])* $name:ident { $field:ident : $ty:ty }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// `apiVersion`, `requestId`, `statusCode`.
            #[serde(flatten)]
            pub base: BaseResponse,
            #[allow(missing_docs)]
            pub $field: $ty,
        }
    };
}

macro_rules! multi_response {
    ($(#[$doc:meta])* $name:ident { $field:ident : $ty:ty }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// `apiVersion`, `requestId`, `statusCode`.
            #[serde(flatten)]
            pub base: BaseResponse,
            /// How many match the query, whatever the page.
            pub total_count: u64,
            #[allow(missing_docs)]
            pub $field: Vec<$ty>,
        }
    };
}

response!(/// One device service.
    DeviceServiceResponse { service: DeviceService });
multi_response!(/// A page of device services.
    MultiDeviceServicesResponse { services: DeviceService });
response!(/// One device profile.
    DeviceProfileResponse { profile: DeviceProfile });
multi_response!(/// A page of device profiles.
    MultiDeviceProfilesResponse { profiles: DeviceProfile });
multi_response!(/// A page of profiles' basic information.
    MultiDeviceProfileBasicInfosResponse { profiles: DeviceProfileBasicInfo });
response!(/// One device resource.
    DeviceResourceResponse { resource: DeviceResource });
response!(/// One device.
    DeviceResponse { device: Device });
multi_response!(/// A page of devices.
    MultiDevicesResponse { devices: Device });
response!(/// One provision watcher.
    ProvisionWatcherResponse { provision_watcher: ProvisionWatcher });
multi_response!(/// A page of provision watchers.
    MultiProvisionWatchersResponse { provision_watchers: ProvisionWatcher });
response!(/// One event.
    EventResponse { event: Event });
multi_response!(/// A page of events.
    MultiEventsResponse { events: Event });
multi_response!(/// A page of readings.
    MultiReadingsResponse { readings: Reading });
response!(/// The units of measure.
    UnitsOfMeasureResponse { uom: UnitsOfMeasure });

/// One key/value pair of a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretDataKeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// `POST /secret` body: a secret to store for the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRequest {
    /// `apiVersion` and `requestId`.
    #[serde(flatten)]
    pub base: BaseRequest,
    /// The secret's name.
    pub secret_name: String,
    /// Its key/value pairs.
    pub secret_data: Vec<SecretDataKeyValue>,
}

impl SecretRequest {
    /// Checks the fields EdgeX checks.
    pub fn validate(&self, v: &mut crate::Validator) {
        crate::check_api_version(v, "", &self.base);
        v.name("secretName", &self.secret_name);
        v.check(!self.secret_data.is_empty(), "secretData", "must hold at least one key/value pair");
        for (i, kv) in self.secret_data.iter().enumerate() {
            v.check(!kv.key.trim().is_empty(), &format!("secretData[{i}].key"), "must not be empty");
        }
    }
}
