//! EdgeX REST API v3 contracts: the data types, the response envelope, the errors and
//! their HTTP status codes, and validation as EdgeX does it.
//!
//! JSON produced here is byte-compatible with EdgeX's: camelCase field names, empty
//! optional fields omitted, enums spelled as EdgeX spells them.

#![warn(missing_docs)]

mod auto_event;
mod common;
mod device;
mod device_profile;
mod device_service;
mod envelope;
mod error;
mod event;
mod provision_watcher;
mod requests;
mod uom;
pub mod validate;

pub use auto_event::{AutoEvent, Retention};
pub use common::{AdminState, OperatingState, ReadWrite, ValueType};
pub use device::{Device, ProtocolProperties, UpdateDevice};
pub use device_profile::{
    DeviceCommand, DeviceProfile, DeviceProfileBasicInfo, DeviceResource, ResourceOperation, ResourceProperties,
};
pub use device_service::{DeviceService, UpdateDeviceService};
pub use envelope::{BaseRequest, BaseResponse, BaseWithIdResponse, CountResponse, MultiResponse, API_VERSION};
pub use error::{EdgeXError, ErrorKind, Result};
pub use event::{check_value, Event, Reading};
pub use provision_watcher::{DiscoveredDevice, ProvisionWatcher, UpdateDiscoveredDevice, UpdateProvisionWatcher};
pub use requests::*;
pub use uom::{Unit, UnitsOfMeasure};
pub use validate::Validator;

use serde::de::DeserializeOwned;

/// Parses a JSON body; the error names the field that failed (`[0].device.adminState: …`).
pub fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| describe(e.path().to_string(), e.inner().to_string()))
}

/// Parses a YAML document; the error names the field that failed.
pub fn from_yaml<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = serde_norway::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| describe(e.path().to_string(), e.inner().to_string()))
}

fn describe(path: String, inner: String) -> EdgeXError {
    if path.is_empty() || path == "." {
        EdgeXError::invalid(format!("malformed body: {inner}"))
    } else {
        EdgeXError::invalid(format!("{path}: {inner}"))
    }
}

/// An update must name its target by `id` (a UUID) or by `name`.
pub(crate) fn check_identity(v: &mut Validator, prefix: &str, id: Option<&str>, name: Option<&str>) {
    let id = id.filter(|s| !s.trim().is_empty());
    let name = name.filter(|s| !s.trim().is_empty());
    match (id, name) {
        (None, None) => v.fail(&format!("{prefix}.id"), "id or name is required"),
        (Some(id), _) if uuid::Uuid::parse_str(id).is_err() => v.fail(&format!("{prefix}.id"), "must be a UUID"),
        _ => {}
    }
}

/// Checks the `apiVersion` of one request item.
pub fn check_api_version(v: &mut Validator, prefix: &str, base: &BaseRequest) {
    if base.api_version != API_VERSION {
        v.fail(&format!("{prefix}apiVersion"), format!("must be {API_VERSION}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_field() {
        let body = br#"[{"apiVersion":"v3","device":{"name":"d","adminState":"SLEEPY"}}]"#;
        let err = from_json::<Vec<AddDeviceRequest>>(body).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(err.message.contains("[0].device.adminState"), "{}", err.message);
    }

    #[test]
    fn malformed_json_is_a_400() {
        let err = from_json::<Vec<AddDeviceRequest>>(b"{not json").unwrap_err();
        assert_eq!(err.status_code(), 400);
    }
}
