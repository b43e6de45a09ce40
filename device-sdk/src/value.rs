//! From raw values to readings and back, per the profile: value types, `base`, `scale`,
//! `offset`, `mask`, `shift`, `minimum`/`maximum`, `assertion`, units, binary and object
//! values.

use oxedge_contracts::{DeviceResource, EdgeXError, Reading};
use serde_json::Value as Json;

use crate::driver::CommandValue;

/// The reading of `resource` that the raw value `cv` read from device `device_name` gives,
/// with the profile's transforms applied.
pub fn to_reading(device_name: &str, profile_name: &str, resource: &DeviceResource, cv: CommandValue) -> Result<Reading, EdgeXError> {
    let _ = (device_name, profile_name, resource, cv);
    todo!("value conversion")
}

/// The raw value to write to `resource`, from the value a PUT body or bus request gives
/// for it, checked and with the transforms reversed.
pub fn parse_write(resource: &DeviceResource, raw: &Json) -> Result<CommandValue, EdgeXError> {
    let _ = (resource, raw);
    todo!("value parsing")
}
