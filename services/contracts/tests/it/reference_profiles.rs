//! Every device profile EdgeX ships (copied unchanged into `reference/edgex-profiles`)
//! parses with our `DeviceProfile`, passes our validation, and survives a JSON round trip.

use std::path::PathBuf;

use oxedge_contracts::{from_json, from_yaml, DeviceProfile, ReadWrite, Validator, ValueType};
use serde_json::json;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reference/edgex-profiles")
}

/// All `*.yaml` / `*.yml` files of the reference directory, sorted; panics if it is missing.
fn reference_files() -> Vec<PathBuf> {
    let dir = reference_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!("the EdgeX reference profiles directory {} is missing or unreadable: {e}", dir.display())
    });
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yaml or *.yml profiles in {}", dir.display());
    files
}

fn load(file_name: &str) -> DeviceProfile {
    let path = reference_dir().join(file_name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    from_yaml(&bytes).unwrap_or_else(|e| panic!("{file_name}: {}", e.message))
}

#[test]
fn every_reference_profile_parses_validates_and_round_trips_through_json() {
    let files = reference_files();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let bytes = std::fs::read(path).unwrap();
        let profile: DeviceProfile = from_yaml(&bytes).unwrap_or_else(|e| panic!("{name}: {}", e.message));

        let mut v = Validator::new();
        profile.validate(&mut v, "profile");
        v.finish().unwrap_or_else(|e| panic!("{name} fails validation: {}", e.message));

        assert!(!profile.name().is_empty(), "{name}: no name");
        assert!(!profile.device_resources.is_empty(), "{name}: no resources");

        let json = serde_json::to_vec(&profile).unwrap();
        let back: DeviceProfile = from_json(&json).unwrap_or_else(|e| panic!("{name}: JSON round trip: {}", e.message));
        assert_eq!(back, profile, "{name}: JSON round trip changed the profile");

        // And back out to YAML, as `GET /deviceprofile/...` answers in YAML.
        let yaml = serde_norway::to_string(&profile).unwrap();
        let again: DeviceProfile =
            from_yaml(yaml.as_bytes()).unwrap_or_else(|e| panic!("{name}: YAML round trip: {}", e.message));
        assert_eq!(again, profile, "{name}: YAML round trip changed the profile");
    }
    assert_eq!(files.len(), 7, "a reference profile was added or removed; update the exact-value tests below");
}

#[test]
fn the_modbus_profile_keeps_its_attributes_permissions_and_scale() {
    let p = load("modbus.test.device.profile.yml");
    assert_eq!(p.name(), "Test-Device-Modbus-Profile");
    assert_eq!(p.info.manufacturer, "Cool Automation");
    assert_eq!(p.info.model, "CoolMasterNet");
    assert_eq!(p.info.labels, ["HVAC", "Air conditioner"]);
    assert_eq!(p.device_resources.len(), 6);
    assert_eq!(p.device_commands.len(), 3);

    let switch_b = p.resource("SwitchB").unwrap();
    assert!(switch_b.is_hidden);
    assert_eq!(
        serde_json::Value::Object(switch_b.attributes.clone()),
        json!({"primaryTable": "COILS", "startingAddress": 14})
    );
    assert_eq!(switch_b.properties.value_type, ValueType::Bool);
    assert_eq!(switch_b.properties.read_write, ReadWrite::RW);
    assert_eq!(switch_b.properties.minimum, Some(0.0));
    assert_eq!(switch_b.properties.maximum, Some(1.0));
    assert_eq!(switch_b.properties.default_value, "0");

    let room = p.resource("RoomTemperature").unwrap();
    assert!(!room.is_hidden);
    assert_eq!(room.description, "Room Temperature x10 °C (Read Only)");
    assert_eq!(room.attributes["primaryTable"], "INPUT_REGISTERS");
    assert_eq!(room.attributes["startingAddress"], 3);
    assert_eq!(room.attributes["rawType"], "Int16");
    assert_eq!(room.properties.value_type, ValueType::Float32);
    assert_eq!(room.properties.read_write, ReadWrite::R);
    assert_eq!(room.properties.scale, Some(0.1));

    // The attributes survive the JSON EdgeX answers with, with the same JSON types.
    let out = serde_json::to_value(&p).unwrap();
    let fan = &out["deviceResources"][3];
    assert_eq!(fan["name"], "FanSpeed");
    assert_eq!(fan["attributes"], json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 2}));
    assert_eq!(fan["properties"]["readWrite"], "RW");
    assert_eq!(fan["properties"]["valueType"], "Int32");
    assert_eq!(out["deviceResources"][4]["properties"]["scale"], json!(0.1));

    let values = p.command("Values").unwrap();
    assert_eq!(values.read_write, ReadWrite::RW);
    let ops: Vec<_> = values.resource_operations.iter().map(|o| o.device_resource.as_str()).collect();
    assert_eq!(ops, ["SwitchA", "OperationMode", "FanSpeed", "Temperature"]);
    assert_eq!(values.resource_operations[0].mappings["true"], "ON");
    assert_eq!(values.resource_operations[1].mappings["10"], "VAM Heat");
    assert_eq!(values.resource_operations[1].mappings.len(), 11);
    assert!(values.resource_operations[3].mappings.is_empty());
}

#[test]
fn the_virtual_profiles_keep_write_only_resources_and_binary_media_types() {
    let int = load("device.virtual.int.yaml");
    assert_eq!(int.name(), "Random-Integer-Device");
    let enable = int.resource("EnableRandomization_Int8").unwrap();
    assert_eq!(enable.properties.read_write, ReadWrite::W);
    assert_eq!(enable.properties.value_type, ValueType::Bool);
    assert_eq!(enable.properties.default_value, "true");
    assert_eq!(int.resource("Int8").unwrap().properties.read_write, ReadWrite::RW);
    for c in &int.device_commands {
        assert_eq!(c.read_write, ReadWrite::W, "command {}", c.name);
    }

    let binary = load("device.virtual.binary.yaml");
    let r = binary.resource("Binary").unwrap();
    assert_eq!(r.properties.value_type, ValueType::Binary);
    assert_eq!(r.properties.read_write, ReadWrite::R);
    assert_eq!(r.properties.media_type, "random");
    assert!(binary.device_commands.is_empty());

    let bool_profile = load("device.virtual.bool.yaml");
    assert_eq!(bool_profile.name(), "Random-Boolean-Device");
}

#[test]
fn the_mqtt_and_rest_profiles_keep_defaults_ranges_and_object_types() {
    let mqtt = load("mqtt.test.device.profile.yml");
    let f32 = mqtt.resource("randfloat32").unwrap();
    assert_eq!(f32.properties.default_value, "0.00");
    assert_eq!((f32.properties.minimum, f32.properties.maximum), (Some(0.0), Some(100.0)));
    assert_eq!(mqtt.resource("json").unwrap().properties.value_type, ValueType::Object);
    assert_eq!(mqtt.resource("ping").unwrap().properties.read_write, ReadWrite::R);

    let json_profile = load("sample-json-device.yaml");
    let r = json_profile.resource("json").unwrap();
    assert_eq!(r.properties.value_type, ValueType::Object);
    assert_eq!(r.properties.media_type, "application/json");

    let numeric = load("sample-numeric-device.yaml");
    assert_eq!(numeric.info.labels, ["rest", "float64", "int64"]);
    assert_eq!(numeric.resource("int").unwrap().properties.value_type, ValueType::Int64);
    assert_eq!(numeric.resource("float").unwrap().properties.value_type, ValueType::Float64);
}

#[test]
fn a_profile_serialized_as_json_uses_edgex_field_names_and_omits_empty_optionals() {
    let p = load("device.virtual.binary.yaml");
    let out = serde_json::to_value(&p).unwrap();
    let obj = out.as_object().unwrap();
    for absent in ["id", "created", "modified"] {
        assert!(!obj.contains_key(absent), "empty `{absent}` must be omitted: {out}");
    }
    let resource = out["deviceResources"][0].as_object().unwrap();
    assert!(!resource.contains_key("attributes"), "empty attributes must be omitted: {out}");
    assert!(!resource.contains_key("tags"), "empty tags must be omitted: {out}");
    let props = resource["properties"].as_object().unwrap();
    for absent in ["units", "minimum", "maximum", "defaultValue", "scale", "offset", "mask", "shift", "base"] {
        assert!(!props.contains_key(absent), "unset `{absent}` must be omitted: {out}");
    }
    assert_eq!(props["mediaType"], "random");
    assert_eq!(out["deviceCommands"], json!([]), "deviceCommands is always present");
}
