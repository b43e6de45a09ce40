//! EdgeX REST API v3 contracts: the data types, the response envelope, the errors and
//! their HTTP status codes, and validation as EdgeX does it.
//!
//! JSON produced here is byte-compatible with EdgeX's: camelCase field names, empty
//! optional fields omitted, enums spelled as EdgeX spells them.

mod auto_event;
#[cfg(feature = "client")]
pub mod client;
mod common;
mod core_command;
mod device;
mod device_profile;
mod device_service;
mod duration;
mod envelope;
mod error;
mod event;
mod provision_watcher;
mod requests;
mod system_event;
mod uom;
pub mod validate;

pub use auto_event::{AutoEvent, Retention};
pub use common::{AdminState, OperatingState, ReadWrite, ValueType};
pub use core_command::{
    CoreCommand, CoreCommandParameter, DeviceCoreCommand, DeviceCoreCommandResponse, MultiDeviceCoreCommandsResponse,
};
pub use device::{Device, ProtocolProperties, UpdateDevice};
pub use device_profile::{
    DeviceCommand, DeviceProfile, DeviceProfileBasicInfo, DeviceResource, ResourceOperation, ResourceProperties,
};
pub use device_service::{DeviceService, UpdateDeviceService};
pub use duration::{BadDuration, GoDuration};
pub use envelope::{BaseRequest, BaseResponse, BaseWithIdResponse, CountResponse, MultiResponse, API_VERSION};
pub use error::{EdgeXError, ErrorKind, Result};
pub use event::{check_value, Event, Reading};
pub use provision_watcher::{DiscoveredDevice, ProvisionWatcher, UpdateDiscoveredDevice, UpdateProvisionWatcher};
pub use requests::*;
pub use system_event::SystemEvent;
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
    check_yaml_flow_depth(body)?;
    let de = serde_norway::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| describe(e.path().to_string(), e.inner().to_string()))
}

/// Deepest `[`/`{` nesting accepted in YAML; deeper values fail serde's recursion limit anyway.
const MAX_YAML_FLOW_DEPTH: usize = 256;

/// Refuses deeply nested flow collections before libyaml sees them: its parser takes time
/// quadratic in that depth (100k `[` inside a mapping: ~20 s of CPU for a 100 kB body).
/// Every `[`/`{` counts, even in strings and comments (over-counting is harmless); a closer
/// only counts outside them, so brackets hidden in strings cannot mask real nesting.
fn check_yaml_flow_depth(body: &[u8]) -> Result<()> {
    let (mut depth, mut quote, mut comment, mut prev) = (0usize, None, false, b'\n');
    let mut bytes = body.iter().copied();
    while let Some(b) = bytes.next() {
        if b == b'[' || b == b'{' {
            depth += 1;
            if depth > MAX_YAML_FLOW_DEPTH {
                return Err(EdgeXError::invalid(format!(
                    "malformed body: YAML nested deeper than {MAX_YAML_FLOW_DEPTH} levels"
                )));
            }
        }
        match (quote, b) {
            (_, b'\n') if comment => comment = false,
            _ if comment => {}
            (Some(b'"'), b'\\') => {
                bytes.next();
            }
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') if !prev.is_ascii_alphanumeric() => quote = Some(b),
            (None, b'#') if prev.is_ascii_whitespace() => comment = true,
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = b;
    }
    Ok(())
}

fn describe(path: String, inner: String) -> EdgeXError {
    if path.is_empty() || path == "." {
        EdgeXError::invalid(format!("malformed body: {inner}"))
    } else {
        EdgeXError::invalid(format!("{path}: {inner}"))
    }
}

/// Checks the `apiVersion` of one request item: required, as EdgeX requires it.
pub fn check_api_version(v: &mut Validator, prefix: &str, base: &BaseRequest) {
    if base.api_version.trim().is_empty() {
        v.fail(&format!("{prefix}apiVersion"), format!("is required (use {API_VERSION})"));
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
