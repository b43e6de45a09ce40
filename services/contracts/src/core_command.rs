//! core-command's DTOs: the commands a device offers (`DeviceCoreCommand`, `CoreCommand`)
//! and the answers listing them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::ValueType;
use crate::envelope::BaseResponse;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One value a command reads (GET) or takes (SET): `CoreCommandParameter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoreCommandParameter {
    /// The device resource.
    pub resource_name: String,
    /// The resource's value type.
    pub value_type: ValueType,
}

/// One command of a device as core-command offers it: a device command or a device resource
/// of its profile (`CoreCommand`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoreCommand {
    /// The command's (or resource's) name.
    pub name: String,
    /// True when it can be read with `GET`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub get: bool,
    /// True when it can be written with `PUT`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub set: bool,
    /// The path to call on core-command (`/api/v3/device/name/{device}/{command}`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// core-command's base URL (`http://localhost:59882`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The resources it reads or writes, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<CoreCommandParameter>,
}

/// The commands of one device (`DeviceCoreCommand`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCoreCommand {
    /// The device.
    pub device_name: String,
    /// The device's profile.
    pub profile_name: String,
    /// What can be read or written.
    #[serde(default)]
    pub core_commands: Vec<CoreCommand>,
}

/// `GET /device/name/{name}` answer (`DeviceCoreCommandResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCoreCommandResponse {
    /// `apiVersion`, `requestId`, `statusCode`.
    #[serde(flatten)]
    pub base: BaseResponse,
    /// The device's commands.
    pub device_core_command: DeviceCoreCommand,
}

/// `GET /device/all` answer (`MultiDeviceCoreCommandsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiDeviceCoreCommandsResponse {
    /// `apiVersion`, `requestId`, `statusCode`.
    #[serde(flatten)]
    pub base: BaseResponse,
    /// How many devices there are, whatever the page.
    pub total_count: u64,
    /// The page of devices' commands.
    pub device_core_commands: Vec<DeviceCoreCommand>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// EdgeX's own core-command OpenAPI file, as JSON.
    fn spec() -> Value {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../reference/edgex-openapi/core-command.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the EdgeX reference OpenAPI file {} is missing: {e}", path.display()));
        serde_norway::from_str(&text).expect("core-command.yaml parses")
    }

    /// Parses the named example as `T`, writes it back and checks nothing changed.
    fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
        let example = spec()["components"]["examples"][name]["value"].clone();
        assert!(example.is_object(), "example {name} is missing");
        let parsed: T = crate::from_json(example.to_string().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), example, "{name} does not round-trip");
        parsed
    }

    #[test]
    fn the_device_example_round_trips() {
        let r: DeviceCoreCommandResponse = round_trip("DeviceCoreCommandExample");
        let cmd = &r.device_core_command;
        assert_eq!(cmd.device_name, "testDevice");
        assert!(cmd.core_commands[0].get && !cmd.core_commands[0].set);
        assert_eq!(cmd.core_commands[1].parameters[1].value_type, ValueType::Bool);
    }

    #[test]
    fn the_list_example_round_trips() {
        let r: MultiDeviceCoreCommandsResponse = round_trip("MultiDeviceCoreCommandsExample");
        assert_eq!(r.total_count, 3);
        assert_eq!(r.device_core_commands.len(), 2);
        assert_eq!(
            r.device_core_commands[1].core_commands[0].path,
            "/api/v3/device/name/testDevice2/command/coolingpoint1"
        );
    }

    #[test]
    fn the_error_examples_are_base_responses() {
        for name in ["400Example", "404Example", "423Example", "416Example", "500Example", "503Example"] {
            let r: BaseResponse = round_trip(name);
            assert_eq!(r.status_code.to_string(), name[..3], "{name}");
        }
    }

    #[test]
    fn false_flags_and_empty_fields_are_omitted() {
        let cmd = CoreCommand {
            name: "c".into(),
            get: true,
            set: false,
            path: String::new(),
            url: String::new(),
            parameters: vec![],
        };
        assert_eq!(serde_json::to_value(&cmd).unwrap(), serde_json::json!({"name": "c", "get": true}));
    }
}
