//! Registering the device service in core-metadata and, on its first start, loading the
//! profiles, devices and provision watchers of the configured directories, as EdgeX's
//! device-sdk-go does.
//!
//! File shapes are EdgeX's: a profile file holds one profile, a provision watcher file one
//! watcher, a device file a list of devices (`deviceList: [...]` in YAML, a JSON array in
//! JSON; a JSON object with `deviceList` is read too). Files ending in `.yaml`, `.yml` or
//! `.json` are read, in name order; others are ignored. Entities that exist already are
//! left as they are. A bad file or entity is reported (file, entity, field) and skipped;
//! the others still load.

use std::fmt;
use std::path::{Path, PathBuf};

use oxedge_contracts::{
    AdminState, Device, DeviceProfile, DeviceService, EdgeXError, ErrorKind, ProvisionWatcher, UpdateDeviceService,
    Validator,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use crate::service::Service;

/// Something in a provisioning file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The file.
    pub file: PathBuf,
    /// What is wrong, naming the entity and field.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// Registers the service at `base_address`, or updates its address and labels when it is
/// registered already (its admin state is kept). Returns true when it was not registered
/// before: the service's first start.
pub(crate) async fn register(svc: &Service, base_address: &str) -> Result<bool, EdgeXError> {
    let labels = &svc.config.device.labels;
    match svc.metadata.device_service(&svc.name).await {
        Ok(existing) => {
            svc.set_locked(existing.admin_state == AdminState::Locked);
            if existing.base_address != base_address || &existing.labels != labels {
                let update = UpdateDeviceService {
                    name: Some(svc.name.clone()),
                    base_address: Some(base_address.to_owned()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                };
                svc.metadata.update_device_service(update).await?;
                tracing::info!(service = %svc.name, %base_address, "Device service address and labels updated.");
            }
            tracing::info!(service = %svc.name, %base_address, "Device service registered before: files not loaded again.");
            Ok(false)
        }
        Err(e) if e.kind == ErrorKind::EntityDoesNotExist => {
            let service = DeviceService {
                created: 0,
                modified: 0,
                id: String::new(),
                name: svc.name.clone(),
                description: String::new(),
                labels: labels.clone(),
                base_address: base_address.to_owned(),
                admin_state: AdminState::Unlocked,
                properties: Map::new(),
            };
            svc.metadata.add_device_service(service).await?;
            svc.set_locked(false);
            tracing::info!(service = %svc.name, %base_address, "Device service registered in core-metadata.");
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Loads the configured profiles, then devices, then provision watchers into core-metadata,
/// skipping those that exist. Returns the problems found (also logged); fails only when
/// core-metadata cannot be reached, so that the caller retries the whole load.
pub(crate) async fn load_files(svc: &Service) -> Result<Vec<Problem>, EdgeXError> {
    let dirs = &svc.config.device;
    let mut problems = Vec::new();

    for (file, parsed) in read_dir(&dirs.profiles_dir, &mut problems, parse_profile) {
        match parsed {
            Ok(profile) => {
                let name = profile.info.name.clone();
                add(svc.metadata.add_device_profile(profile).await, &file, "profile", &name, &mut problems)?;
            }
            Err(message) => problems.push(Problem { file, message }),
        }
    }
    for (file, parsed) in
        read_dir(&dirs.devices_dir, &mut problems, |bytes, json| parse_devices(bytes, json, &svc.name))
    {
        let devices = match parsed {
            Ok(devices) => devices,
            Err(message) => {
                problems.push(Problem { file, message });
                continue;
            }
        };
        for device in devices {
            let device = match device {
                Ok(device) => device,
                Err(message) => {
                    problems.push(Problem { file: file.clone(), message });
                    continue;
                }
            };
            let name = device.name.clone();
            if let Err(e) = svc.driver.validate_device(&device).await {
                let message = format!("device '{name}': rejected by the driver: {e}");
                problems.push(Problem { file: file.clone(), message });
                continue;
            }
            add(svc.metadata.add_device(device).await, &file, "device", &name, &mut problems)?;
        }
    }
    let parse_watcher = |bytes: &[u8], json: bool| parse_watcher(bytes, json, &svc.name);
    for (file, parsed) in read_dir(&dirs.provision_watchers_dir, &mut problems, parse_watcher) {
        match parsed {
            Ok(watcher) => {
                let name = watcher.name.clone();
                add(
                    svc.metadata.add_provision_watcher(watcher).await,
                    &file,
                    "provision watcher",
                    &name,
                    &mut problems,
                )?;
            }
            Err(message) => problems.push(Problem { file, message }),
        }
    }
    for problem in &problems {
        tracing::error!(file = %problem.file.display(), problem = %problem.message, "Provisioning file not loaded.");
    }
    Ok(problems)
}

/// Sorts out one add: created and existing are fine, unreachable is returned, anything else
/// (core-metadata rejecting the entity) is a problem of the file.
fn add(
    result: Result<String, EdgeXError>,
    file: &Path,
    what: &str,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Result<(), EdgeXError> {
    match result {
        Ok(_) => {
            tracing::info!(file = %file.display(), "Added {what} '{name}'.");
            Ok(())
        }
        Err(e) if e.kind == ErrorKind::DuplicateName => {
            tracing::info!(file = %file.display(), "The {what} '{name}' exists; keeping it.");
            Ok(())
        }
        Err(e) if matches!(e.kind, ErrorKind::ServiceUnavailable | ErrorKind::Timeout) => Err(e),
        Err(e) => {
            let message = format!("{what} '{name}': refused by core-metadata: {e}");
            problems.push(Problem { file: file.to_owned(), message });
            Ok(())
        }
    }
}

/// Parses every provisioning file of `dir` with `parse(bytes, is_json)`; a directory that
/// cannot be read is one problem. An empty path means no directory.
fn read_dir<T>(
    dir: &Path,
    problems: &mut Vec<Problem>,
    parse: impl Fn(&[u8], bool) -> Result<T, String>,
) -> Vec<(PathBuf, Result<T, String>)> {
    if dir.as_os_str().is_empty() {
        return Vec::new();
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem { file: dir.to_owned(), message: format!("cannot read the directory: {e}") });
            return Vec::new();
        }
    };
    let mut files: Vec<(PathBuf, bool)> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let ext = path.extension()?.to_str()?.to_ascii_lowercase();
            let json = match ext.as_str() {
                "json" => true,
                "yaml" | "yml" => false,
                _ => return None,
            };
            path.is_file().then_some((path, json))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(path, json)| {
            let parsed =
                std::fs::read(&path).map_err(|e| format!("cannot read the file: {e}")).and_then(|b| parse(&b, json));
            (path, parsed)
        })
        .collect()
}

/// Decodes a YAML or JSON file; the error names the field.
fn decode<T: DeserializeOwned>(bytes: &[u8], json: bool) -> Result<T, String> {
    let parsed = if json { oxedge_contracts::from_json(bytes) } else { oxedge_contracts::from_yaml(bytes) };
    parsed.map_err(|e| e.message)
}

/// Decodes a JSON tree into `T`; the error names the field under `prefix`.
fn from_tree<T: DeserializeOwned>(tree: Json, prefix: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            format!("{prefix}: {}", e.inner())
        } else {
            format!("{prefix}.{path}: {}", e.inner())
        }
    })
}

/// Sets `key` of `object` to `value` when it is absent.
fn default_key(object: &mut Json, key: &str, value: &str) {
    if let Json::Object(map) = object {
        map.entry(key).or_insert_with(|| Json::String(value.to_owned()));
    }
}

/// A profile file: one profile, checked as core-metadata checks it.
fn parse_profile(bytes: &[u8], json: bool) -> Result<DeviceProfile, String> {
    let profile: DeviceProfile = decode(bytes, json)?;
    let mut v = Validator::new();
    profile.validate(&mut v, "profile");
    v.finish().map_err(|e| format!("profile '{}': {e}", profile.info.name))?;
    Ok(profile)
}

/// A device file: the file's own error, or each device or its error. Devices belong to
/// `service`; `adminState` defaults to UNLOCKED and `operatingState` to UP.
fn parse_devices(bytes: &[u8], json: bool, service: &str) -> Result<Vec<Result<Device, String>>, String> {
    let tree: Json = decode(bytes, json)?;
    let (list, prefix) = match tree {
        Json::Array(list) if json => (list, ""),
        Json::Object(mut map) => match map.remove("deviceList") {
            Some(Json::Array(list)) => (list, "deviceList"),
            Some(_) => return Err("deviceList: must be a list of devices".to_owned()),
            None => return Err("deviceList: missing (a device file holds `deviceList: [...]`)".to_owned()),
        },
        _ if json => return Err("must be a JSON array of devices".to_owned()),
        _ => return Err("deviceList: missing (a device file holds `deviceList: [...]`)".to_owned()),
    };
    Ok(list
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            let at = format!("{prefix}[{i}]");
            let name = item.get("name").and_then(Json::as_str).map(str::to_owned);
            let what = match &name {
                Some(name) => format!("device '{name}'"),
                None => "device".to_owned(),
            };
            if !item.is_object() {
                return Err(format!("{what}: {at}: must be an object"));
            }
            default_key(&mut item, "adminState", "UNLOCKED");
            default_key(&mut item, "operatingState", "UP");
            if let Json::Object(map) = &mut item {
                map.insert("serviceName".to_owned(), Json::String(service.to_owned()));
            }
            let device: Device = from_tree(item, &at).map_err(|e| format!("{what}: {e}"))?;
            let mut v = Validator::new();
            device.validate(&mut v, &at);
            v.finish().map_err(|e| format!("{what}: {e}"))?;
            Ok(device)
        })
        .collect())
}

/// A provision watcher file: one watcher of `service`; `adminState` and
/// `discoveredDevice.adminState` default to UNLOCKED.
fn parse_watcher(bytes: &[u8], json: bool, service: &str) -> Result<ProvisionWatcher, String> {
    let mut tree: Json = decode(bytes, json)?;
    let Json::Object(map) = &mut tree else { return Err("must hold one provision watcher (a mapping)".to_owned()) };
    map.insert("serviceName".to_owned(), Json::String(service.to_owned()));
    default_key(&mut tree, "adminState", "UNLOCKED");
    if let Some(dd) = tree.get_mut("discoveredDevice") {
        default_key(dd, "adminState", "UNLOCKED");
    }
    let name = tree.get("name").and_then(Json::as_str).unwrap_or_default().to_owned();
    let watcher: ProvisionWatcher = from_tree(tree, "provisionWatcher")?;
    let mut v = Validator::new();
    watcher.validate(&mut v, "provisionWatcher");
    v.finish().map_err(|e| format!("provision watcher '{name}': {e}"))?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_files_read_as_edgex_writes_them() {
        let yaml = b"deviceList:\n  - name: t1\n    profileName: P\n    protocols: { other: { Address: a } }\n";
        let devices = parse_devices(yaml, false, "svc").unwrap();
        let d = devices[0].as_ref().unwrap();
        assert_eq!((d.name.as_str(), d.service_name.as_str(), d.admin_state), ("t1", "svc", AdminState::Unlocked));

        let json = br#"[{"name":"t2","profileName":"P","protocols":{"other":{"Address":"a"}}}]"#;
        assert_eq!(parse_devices(json, true, "svc").unwrap()[0].as_ref().unwrap().name, "t2");
    }

    #[test]
    fn bad_devices_name_the_device_and_field_and_spare_the_others() {
        let yaml = b"deviceList:\n  - name: ok\n    profileName: P\n    protocols: { other: { Address: a } }\n  - name: bad\n    profileName: P\n    adminState: SLEEPY\n    protocols: { other: {} }\n  - name: noproto\n    profileName: P\n";
        let devices = parse_devices(yaml, false, "svc").unwrap();
        assert!(devices[0].is_ok());
        let bad = devices[1].as_ref().unwrap_err();
        assert!(bad.contains("device 'bad'") && bad.contains("deviceList[1].adminState"), "{bad}");
        let missing = devices[2].as_ref().unwrap_err();
        assert!(missing.contains("device 'noproto'") && missing.contains("protocols"), "{missing}");

        let err = parse_devices(b"devices: []\n", false, "svc").unwrap_err();
        assert!(err.contains("deviceList"), "{err}");
        assert!(parse_devices(b"deviceList: [\n", false, "svc").is_err());
    }

    #[test]
    fn profiles_and_watchers_name_the_field() {
        let err = parse_profile(
            b"name: P\ndeviceResources:\n  - name: r\n    properties: { valueType: Float99, readWrite: R }\n",
            false,
        )
        .unwrap_err();
        assert!(err.contains("valueType") || err.contains("deviceResources"), "{err}");

        let w = b"name: w\nidentifiers: { Address: 'sim.*' }\ndiscoveredDevice: { profileName: P }\n";
        let watcher = parse_watcher(w, false, "svc").unwrap();
        assert_eq!(watcher.service_name, "svc");
        assert_eq!(watcher.discovered_device.admin_state, AdminState::Unlocked);

        let err = parse_watcher(b"name: w\nidentifiers: {}\ndiscoveredDevice: { profileName: P }\n", false, "svc")
            .unwrap_err();
        assert!(err.contains("provisionWatcher.identifiers"), "{err}");
    }

    #[test]
    fn the_shipped_profiles_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/device-profiles");
        let mut problems = Vec::new();
        let read = read_dir(&dir, &mut problems, parse_profile);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!read.is_empty());
        for (file, parsed) in read {
            assert!(parsed.is_ok(), "{}: {parsed:?}", file.display());
        }
    }

    #[test]
    fn a_directory_reads_only_provisioning_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "name: B\n").unwrap();
        std::fs::write(dir.path().join("a.json"), r#"{"name":"A"}"#).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let mut problems = Vec::new();
        let read = read_dir(dir.path(), &mut problems, parse_profile);
        let names: Vec<String> = read.into_iter().map(|(_, p)| p.unwrap().info.name).collect();
        assert_eq!(names, ["A", "B"]);
        assert!(problems.is_empty());
        read_dir(&dir.path().join("nope"), &mut problems, parse_profile);
        assert!(problems[0].message.contains("cannot read the directory"), "{problems:?}");
    }
}
