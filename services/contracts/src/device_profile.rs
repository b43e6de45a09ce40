//! `DeviceProfile`: what a class of devices offers — its resources and commands.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::common::{is_zero, ReadWrite, ValueType};
use crate::validate::Validator;

/// A profile's identity and descriptive fields (`DeviceProfileBasicInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProfileBasicInfo {
    /// Unique id (UUID), set by core-metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Who makes the device.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manufacturer: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The device model.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Labels to search by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// How many devices use the profile; core-metadata computes it for its answers and
    /// ignores it on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_device_count: Option<u64>,
}

/// A device profile. Reads the same from JSON and from EdgeX's YAML files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProfile {
    /// Creation time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created: i64,
    /// Last change, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modified: i64,
    /// Name, manufacturer, model, labels.
    #[serde(flatten)]
    pub info: DeviceProfileBasicInfo,
    /// What can be read or written, one value each.
    #[serde(default)]
    pub device_resources: Vec<DeviceResource>,
    /// Named groups of resources read or written together.
    #[serde(default)]
    pub device_commands: Vec<DeviceCommand>,
}

/// One readable or writable value of a device (`deviceResources[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceResource {
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Unique name within the profile.
    pub name: String,
    /// Hidden from core-command's listing.
    #[serde(default)]
    pub is_hidden: bool,
    /// Type, permission and conversion of the value.
    pub properties: ResourceProperties,
    /// Protocol-specific addressing (e.g. Modbus `primaryTable`, `startingAddress`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    /// Tags added to readings of this resource.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
}

/// Type, permission and conversion of a resource's value (`ResourceProperties`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceProperties {
    /// The value's type.
    pub value_type: ValueType,
    /// R, W or RW.
    pub read_write: ReadWrite,
    /// Unit of measure.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub units: String,
    /// Smallest value accepted on write.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::common::go_float_opt")]
    pub minimum: Option<f64>,
    /// Largest value accepted on write.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::common::go_float_opt")]
    pub maximum: Option<f64>,
    /// Value used when a write gives none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_value: String,
    /// Bit mask applied to raw integer values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<u64>,
    /// Bit shift applied after the mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<i64>,
    /// Multiplier applied after the shift.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::common::go_float_opt")]
    pub scale: Option<f64>,
    /// Added after the scale.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::common::go_float_opt")]
    pub offset: Option<f64>,
    /// Raises base to the value's power.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::common::go_float_opt")]
    pub base: Option<f64>,
    /// Value the reading must equal, else the device is marked in error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub assertion: String,
    /// MIME type of binary and object values.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub optional: Map<String, Value>,
}

/// A named group of resources (`deviceCommands[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCommand {
    /// Unique name within the profile (resources included).
    pub name: String,
    /// Hidden from core-command's listing.
    #[serde(default)]
    pub is_hidden: bool,
    /// R, W or RW.
    pub read_write: ReadWrite,
    /// The resources, in order.
    pub resource_operations: Vec<ResourceOperation>,
    /// Tags added to events of this command.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
}

/// One resource of a command (`resourceOperations[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOperation {
    /// The resource's name in this profile.
    pub device_resource: String,
    /// Value used when a write gives none. EdgeX (Go) matches keys case-insensitively and its
    /// own examples send `DefaultValue`.
    #[serde(default, alias = "DefaultValue")]
    pub default_value: String,
    /// Raw value → shown value, for String resources.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub mappings: std::collections::BTreeMap<String, String>,
}

impl DeviceProfile {
    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The resource named `name`.
    pub fn resource(&self, name: &str) -> Option<&DeviceResource> {
        self.device_resources.iter().find(|r| r.name == name)
    }

    /// The command named `name`.
    pub fn command(&self, name: &str) -> Option<&DeviceCommand> {
        self.device_commands.iter().find(|c| c.name == name)
    }

    /// True when `source` names a resource or a command of this profile.
    pub fn has_source(&self, source: &str) -> bool {
        self.resource(source).is_some() || self.command(source).is_some()
    }

    /// Checks the profile as EdgeX does: names, unique resources and commands,
    /// commands referring to existing resources with compatible permissions.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        v.name(&format!("{prefix}.name"), &self.info.name);
        v.labels(&format!("{prefix}.labels"), &self.info.labels);
        let mut names = HashSet::new();
        for (i, r) in self.device_resources.iter().enumerate() {
            let p = format!("{prefix}.deviceResources[{i}]");
            r.validate(v, &p);
            if !names.insert(r.name.as_str()) {
                v.fail(&format!("{p}.name"), format!("resource '{}' is defined twice", r.name));
            }
        }
        for (i, c) in self.device_commands.iter().enumerate() {
            let p = format!("{prefix}.deviceCommands[{i}]");
            v.name(&format!("{p}.name"), &c.name);
            if !names.insert(c.name.as_str()) {
                v.fail(&format!("{p}.name"), format!("'{}' is already a resource or command of this profile", c.name));
            }
            self.validate_command(v, &p, c);
        }
    }

    fn validate_command(&self, v: &mut Validator, p: &str, c: &DeviceCommand) {
        if c.resource_operations.is_empty() {
            v.fail(&format!("{p}.resourceOperations"), "must name at least one resource");
        }
        for (j, op) in c.resource_operations.iter().enumerate() {
            let field = format!("{p}.resourceOperations[{j}].deviceResource");
            match self.resource(&op.device_resource) {
                None => v.fail(&field, format!("resource '{}' is not in this profile", op.device_resource)),
                Some(r) => {
                    let rw = r.properties.read_write;
                    if (c.read_write.readable() && !rw.readable()) || (c.read_write.writable() && !rw.writable()) {
                        v.fail(
                            &field,
                            format!(
                                "command readWrite {:?} does not fit resource '{}' readWrite {:?}",
                                c.read_write, r.name, rw
                            ),
                        );
                    }
                }
            }
        }
    }
}

impl DeviceResource {
    /// Checks name, numeric range and write permission of binary values.
    pub fn validate(&self, v: &mut Validator, p: &str) {
        v.name(&format!("{p}.name"), &self.name);
        let props = &self.properties;
        if let (Some(min), Some(max)) = (props.minimum, props.maximum) {
            v.check(min <= max, &format!("{p}.properties.minimum"), "must not be greater than maximum");
        }
        if props.value_type == ValueType::Binary && props.read_write.writable() {
            v.fail(&format!("{p}.properties.readWrite"), "Binary resources cannot be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(yaml: &str) -> DeviceProfile {
        serde_norway::from_str(yaml).unwrap()
    }

    const BASE: &str = r#"
name: p1
deviceResources:
  - name: Temp
    properties: { valueType: Float32, readWrite: R }
  - name: Switch
    properties: { valueType: Bool, readWrite: RW }
deviceCommands:
  - name: All
    readWrite: R
    resourceOperations: [{ deviceResource: Temp }, { deviceResource: Switch }]
"#;

    #[test]
    fn a_sound_profile_passes() {
        let mut v = Validator::new();
        profile(BASE).validate(&mut v, "profile");
        v.finish().unwrap();
    }

    #[test]
    fn commands_must_name_resources_with_compatible_permissions() {
        let mut p = profile(BASE);
        p.device_commands[0].read_write = ReadWrite::RW;
        p.device_commands[0].resource_operations.push(ResourceOperation {
            device_resource: "Nope".into(),
            default_value: String::new(),
            mappings: Default::default(),
        });
        let mut v = Validator::new();
        p.validate(&mut v, "profile");
        let msg = v.finish().unwrap_err().message;
        assert!(msg.contains("profile.deviceCommands[0].resourceOperations[0].deviceResource"), "{msg}");
        assert!(msg.contains("'Nope' is not in this profile"), "{msg}");
    }

    #[test]
    fn duplicate_resource_and_command_names_are_rejected() {
        let mut p = profile(BASE);
        p.device_resources.push(p.device_resources[0].clone());
        p.device_commands[0].name = "Switch".into();
        let mut v = Validator::new();
        p.validate(&mut v, "profile");
        let msg = v.finish().unwrap_err().message;
        assert!(msg.contains("deviceResources[2].name"), "{msg}");
        assert!(msg.contains("deviceCommands[0].name"), "{msg}");
    }
}
