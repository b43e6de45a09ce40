//! The driver called directly with the profiles and devices of `profiles/device-virtual/`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oxedge_contracts::{DeviceProfile, ProvisionWatcher, Validator, ValueType};
use oxedge_device_sdk::value::to_reading;
use oxedge_device_sdk::{CommandRequest, CommandValue, DriverError, ProtocolDriver, Protocols, Value, WriteCommand};
use oxedge_device_virtual::{Settings, VirtualDriver};
use serde_json::{json, Value as Json};

fn dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-virtual").join(sub)
}

fn profiles() -> Vec<DeviceProfile> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir("profiles")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let profile: DeviceProfile =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push(profile);
    }
    out
}

fn profile(name: &str) -> DeviceProfile {
    profiles().into_iter().find(|p| p.name() == name).unwrap_or_else(|| panic!("no profile {name}"))
}

/// (device name, profile name) of every device in the devices file.
fn devices() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir("devices/devices.yaml")).unwrap();
    let file: Json = serde_norway::from_str(&text).unwrap();
    file["deviceList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_owned(), d["profileName"].as_str().unwrap().to_owned()))
        .collect()
}

fn driver_for(device: &str, profile_name: &str) -> VirtualDriver {
    let driver = VirtualDriver::default();
    driver.serve_profile(device, profile(profile_name));
    driver
}

fn request(p: &DeviceProfile, resource: &str) -> CommandRequest {
    let r = p.resource(resource).unwrap_or_else(|| panic!("no resource {resource}"));
    CommandRequest {
        resource_name: r.name.clone(),
        attributes: r.attributes.clone(),
        value_type: r.properties.value_type,
    }
}

async fn read(driver: &VirtualDriver, device: &str, p: &DeviceProfile, resource: &str) -> Result<Value, DriverError> {
    let values = driver.handle_read_commands(device, &Protocols::new(), &[request(p, resource)]).await?;
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].resource_name, resource);
    Ok(values.into_iter().next().unwrap().value)
}

async fn write(
    driver: &VirtualDriver,
    device: &str,
    p: &DeviceProfile,
    values: &[(&str, Value)],
) -> Result<(), DriverError> {
    let writes: Vec<WriteCommand> =
        values.iter().map(|(r, v)| WriteCommand::new(request(p, r), CommandValue::new(*r, v.clone()))).collect();
    driver.handle_write_commands(device, &Protocols::new(), &writes).await
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Float32(f) => Some(f64::from(*f)),
        Value::Float64(f) => Some(*f),
        other => other.as_i128().map(|i| i as f64),
    }
}

#[test]
fn the_profiles_are_valid_and_cover_every_value_type() {
    let mut types = BTreeSet::new();
    for p in profiles() {
        let mut v = Validator::new();
        p.validate(&mut v, "profile");
        assert!(v.is_ok(), "profile {} is not valid", p.name());
        types.extend(p.device_resources.iter().map(|r| r.properties.value_type.as_str()));
    }
    let all: BTreeSet<&str> = ValueType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, all);
}

#[tokio::test]
async fn every_device_reads_every_readable_resource_within_bounds() {
    let devices = devices();
    assert!(devices.len() >= 9);
    let names: BTreeSet<String> = profiles().iter().map(|p| p.name().to_owned()).collect();
    for (device, profile_name) in devices {
        assert!(names.contains(&profile_name), "device {device}: no profile {profile_name}");
        let p = profile(&profile_name);
        let driver = driver_for(&device, &profile_name);
        for r in &p.device_resources {
            let props = &r.properties;
            if !props.read_write.readable() || r.attributes.contains_key("fail") || r.attributes.contains_key("delay") {
                continue;
            }
            for _ in 0..20 {
                let value = read(&driver, &device, &p, &r.name).await.unwrap();
                assert_eq!(value.value_type(), props.value_type, "{device}/{}", r.name);
                if let Some(x) = number(&value) {
                    assert!(props.minimum.is_none_or(|min| x >= min), "{device}/{}: {x} below the minimum", r.name);
                    assert!(props.maximum.is_none_or(|max| x <= max), "{device}/{}: {x} above the maximum", r.name);
                }
                let reading = to_reading(&device, p.name(), r, CommandValue::new(r.name.clone(), value))
                    .unwrap_or_else(|e| panic!("{device}/{}: {e}", r.name));
                let mut v = Validator::new();
                reading.validate(&mut v, "reading");
                assert!(v.is_ok(), "{device}/{}: invalid reading {reading:?}", r.name);
            }
        }
    }
}

#[tokio::test]
async fn readings_go_through_the_profile_s_transforms() {
    let p = profile("Virtual-Simulation");
    let driver = driver_for("sim", "Virtual-Simulation");
    for _ in 0..20 {
        let raw = read(&driver, "sim", &p, "Voltage").await.unwrap();
        let reading =
            to_reading("sim", p.name(), p.resource("Voltage").unwrap(), CommandValue::new("Voltage", raw)).unwrap();
        let volts: f64 = reading.value.unwrap().parse().unwrap();
        assert!((220.0..=240.0).contains(&volts), "{volts}");
        let raw = read(&driver, "sim", &p, "Register").await.unwrap();
        let reading =
            to_reading("sim", p.name(), p.resource("Register").unwrap(), CommandValue::new("Register", raw)).unwrap();
        assert!(reading.value.unwrap().parse::<u16>().unwrap() <= 255);
    }
    let blob = profile("Virtual-Collections");
    let raw = read(&driver_for("c", "Virtual-Collections"), "c", &blob, "Blob").await.unwrap();
    let reading = to_reading("c", blob.name(), blob.resource("Blob").unwrap(), CommandValue::new("Blob", raw)).unwrap();
    assert_eq!(reading.binary_value.unwrap().len(), 32);
    assert_eq!(reading.media_type, "application/octet-stream");
}

#[tokio::test]
async fn counters_count_and_sines_stay_in_bounds() {
    let p = profile("Virtual-Simulation");
    let driver = driver_for("sim", "Virtual-Simulation");
    let mut counts = Vec::new();
    let mut levels = Vec::new();
    for _ in 0..25 {
        counts.push(read(&driver, "sim", &p, "Counter").await.unwrap().as_i128().unwrap());
        levels.push(read(&driver, "sim", &p, "Level").await.unwrap().as_i128().unwrap());
        let Value::Float64(t) = read(&driver, "sim", &p, "Temperature").await.unwrap() else { panic!("not a Float64") };
        assert!((15.0..=30.0).contains(&t), "{t}");
    }
    assert_eq!(counts, (0..25).collect::<Vec<i128>>());
    assert_eq!(&levels[..13], &[0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, -50, -45]);
    // Each device counts on its own.
    assert_eq!(read(&driver, "other", &p, "Counter").await, Err(DriverError::Invalid("unknown device other".into())));
    driver.serve_profile("other", p.clone());
    assert_eq!(read(&driver, "other", &p, "Counter").await.unwrap(), Value::Uint32(0));
}

#[tokio::test]
async fn writes_are_kept_per_device_and_read_back() {
    let p = profile("Virtual-Simulation");
    let driver = driver_for("a", "Virtual-Simulation");
    driver.serve_profile("b", p.clone());
    assert_eq!(read(&driver, "a", &p, "SetPoint").await.unwrap(), Value::Float64(21.5), "the default value");
    write(&driver, "a", &p, &[("SetPoint", Value::Float64(25.0)), ("Mode", Value::String("eco".into()))])
        .await
        .unwrap();
    assert_eq!(read(&driver, "a", &p, "SetPoint").await.unwrap(), Value::Float64(25.0));
    assert_eq!(read(&driver, "a", &p, "Mode").await.unwrap(), Value::String("eco".into()));
    assert_eq!(read(&driver, "b", &p, "SetPoint").await.unwrap(), Value::Float64(21.5), "device b is untouched");

    // A random resource without a randomization switch keeps what is written to it.
    let c = profile("Virtual-Collections");
    driver.serve_profile("c", c.clone());
    write(&driver, "c", &c, &[("Digits", Value::Uint8Array(vec![1, 2, 3, 4]))]).await.unwrap();
    for _ in 0..3 {
        assert_eq!(read(&driver, "c", &c, "Digits").await.unwrap(), Value::Uint8Array(vec![1, 2, 3, 4]));
    }
    let err = write(&driver, "a", &p, &[("SetPoint", Value::Int32(3))]).await.unwrap_err();
    assert!(matches!(err, DriverError::Invalid(ref m) if m.contains("SetPoint")), "{err:?}");
}

#[tokio::test]
async fn edgex_randomization_switches_toggle_simulation() {
    let p = profile("Random-Integer-Device");
    let driver = driver_for("int", "Random-Integer-Device");
    // As EdgeX's WriteInt8Value command does: the value and the switch at once.
    write(&driver, "int", &p, &[("Int8", Value::Int8(42)), ("EnableRandomization_Int8", Value::Bool(false))])
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(read(&driver, "int", &p, "Int8").await.unwrap(), Value::Int8(42));
    }
    write(&driver, "int", &p, &[("EnableRandomization_Int8", Value::Bool(true))]).await.unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        seen.insert(read(&driver, "int", &p, "Int8").await.unwrap().as_i128().unwrap());
    }
    assert!(seen.len() > 5, "randomization is back on: {seen:?}");
    // While randomization is on, a written value is overwritten by the next read, as in EdgeX.
    write(&driver, "int", &p, &[("Int64Array", Value::Int64Array(vec![7]))]).await.unwrap();
    let arrays: Vec<Value> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(read(&driver, "int", &p, "Int64Array").await.unwrap());
        }
        v
    };
    assert!(arrays.iter().all(|a| matches!(a, Value::Int64Array(items) if items.len() == 5)), "{arrays:?}");
    write(&driver, "int", &p, &[("EnableRandomization_Int64Array", Value::Bool(false))]).await.unwrap();
    let pinned = read(&driver, "int", &p, "Int64Array").await.unwrap();
    assert_eq!(read(&driver, "int", &p, "Int64Array").await.unwrap(), pinned, "the last value is kept");
}

#[tokio::test]
async fn faulty_resources_fail_or_answer_late() {
    let p = profile("Virtual-Faulty");
    let driver = driver_for("f", "Virtual-Faulty");
    assert!(matches!(read(&driver, "f", &p, "Broken").await, Err(DriverError::Failed(m)) if m.contains("Broken")));
    assert!(read(&driver, "f", &p, "Fine").await.is_ok());
    assert_eq!(p.resource("Slow").unwrap().attributes["delay"], json!("3s"));

    let slow = VirtualDriver::new(Settings { read_delay: "150ms".into(), load_devices: 0 });
    slow.serve_profile("f", p.clone());
    let started = Instant::now();
    read(&slow, "f", &p, "Fine").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn unknown_resources_and_bad_attributes_are_invalid_requests() {
    let p = profile("Virtual-Simulation");
    let driver = driver_for("sim", "Virtual-Simulation");
    let stranger =
        CommandRequest { resource_name: "Nope".into(), attributes: Default::default(), value_type: ValueType::Int8 };
    let err = driver.handle_read_commands("sim", &Protocols::new(), &[stranger]).await.unwrap_err();
    assert!(matches!(err, DriverError::Invalid(ref m) if m.contains("Nope")), "{err:?}");

    let mut bad = p.clone();
    bad.device_resources[0].attributes.insert("simulation".into(), json!("wave"));
    driver.serve_profile("bad", bad.clone());
    let err = read(&driver, "bad", &bad, "Temperature").await.unwrap_err();
    assert!(
        matches!(err, DriverError::Invalid(ref m) if m.contains("Temperature") && m.contains("simulation")),
        "{err:?}"
    );
    assert!(read(&driver, "bad", &bad, "Humidity").await.is_ok(), "the other resources still work");
}

#[tokio::test]
async fn the_load_generator_discovers_devices_its_watcher_takes() {
    let driver = VirtualDriver::new(Settings { load_devices: 3, ..Default::default() });
    let found = driver.discover().await.unwrap();
    let names: Vec<&str> = found.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["load-0001", "load-0002", "load-0003"]);
    assert_eq!(found[0].protocols["other"]["Address"], json!("load-0001"));
    assert!(VirtualDriver::default().discover().await.unwrap().is_empty());

    let text = std::fs::read_to_string(dir("provisionwatchers/virtual-load.yaml")).unwrap();
    let watcher: ProvisionWatcher = serde_norway::from_str(&text).unwrap();
    let mut v = Validator::new();
    watcher.validate(&mut v, "watcher");
    assert!(v.is_ok());
    assert_eq!(watcher.identifiers["Address"], "^load-[0-9]+$");
    let load = profile(&watcher.discovered_device.profile_name);
    let source = &watcher.discovered_device.auto_events[0].source_name;
    assert_eq!(load.command(source).unwrap().resource_operations.len(), 5);
    let driver = driver_for("load-0001", "Virtual-Load");
    let reqs: Vec<CommandRequest> = load.device_resources.iter().map(|r| request(&load, &r.name)).collect();
    let values = driver.handle_read_commands("load-0001", &Protocols::new(), &reqs).await.unwrap();
    assert_eq!(values.len(), 5);
}

#[test]
fn settings_name_the_bad_key() {
    let bad = Settings { read_delay: "later".into(), load_devices: 0 };
    assert!(bad.read_delay().unwrap_err().contains("driver.read_delay"));
    assert_eq!(Settings::default().read_delay().unwrap(), Duration::ZERO);
}
