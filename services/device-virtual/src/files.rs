//! The shipped profiles, devices and provision watcher of `profiles/device-virtual/`,
//! built into the binary so that the all-in-one runs its virtual devices from anywhere.

use std::path::Path;

/// Each shipped file, by its path under `profiles/device-virtual/`.
pub const FILES: &[(&str, &str)] = &[
    (
        "profiles/device.virtual.binary.yaml",
        include_str!("../../../profiles/device-virtual/profiles/device.virtual.binary.yaml"),
    ),
    (
        "profiles/device.virtual.bool.yaml",
        include_str!("../../../profiles/device-virtual/profiles/device.virtual.bool.yaml"),
    ),
    (
        "profiles/device.virtual.float.yaml",
        include_str!("../../../profiles/device-virtual/profiles/device.virtual.float.yaml"),
    ),
    (
        "profiles/device.virtual.int.yaml",
        include_str!("../../../profiles/device-virtual/profiles/device.virtual.int.yaml"),
    ),
    (
        "profiles/device.virtual.object.yaml",
        include_str!("../../../profiles/device-virtual/profiles/device.virtual.object.yaml"),
    ),
    (
        "profiles/device.virtual.uint.yaml",
        include_str!("../../../profiles/device-virtual/profiles/device.virtual.uint.yaml"),
    ),
    (
        "profiles/oxedge.virtual.collections.yaml",
        include_str!("../../../profiles/device-virtual/profiles/oxedge.virtual.collections.yaml"),
    ),
    (
        "profiles/oxedge.virtual.faulty.yaml",
        include_str!("../../../profiles/device-virtual/profiles/oxedge.virtual.faulty.yaml"),
    ),
    (
        "profiles/oxedge.virtual.load.yaml",
        include_str!("../../../profiles/device-virtual/profiles/oxedge.virtual.load.yaml"),
    ),
    (
        "profiles/oxedge.virtual.simulation.yaml",
        include_str!("../../../profiles/device-virtual/profiles/oxedge.virtual.simulation.yaml"),
    ),
    ("devices/devices.yaml", include_str!("../../../profiles/device-virtual/devices/devices.yaml")),
    (
        "provisionwatchers/virtual-load.yaml",
        include_str!("../../../profiles/device-virtual/provisionwatchers/virtual-load.yaml"),
    ),
];

/// Writes the shipped files into `dir` (`dir/profiles`, `dir/devices`,
/// `dir/provisionwatchers`), replacing earlier copies, so that the directories the SDK loads
/// on first start hold this build's files.
pub fn install(dir: &Path) -> std::io::Result<()> {
    for (path, text) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_file_is_built_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-virtual");
        let mut on_disk = Vec::new();
        for sub in ["profiles", "devices", "provisionwatchers"] {
            for entry in std::fs::read_dir(root.join(sub)).unwrap() {
                on_disk.push(format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy()));
            }
        }
        on_disk.sort();
        let mut built_in: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        built_in.sort();
        assert_eq!(built_in, on_disk, "list every file of profiles/device-virtual in FILES");

        let dir = tempfile::tempdir().unwrap();
        install(dir.path()).unwrap();
        for (path, text) in FILES {
            assert_eq!(&std::fs::read_to_string(dir.path().join(path)).unwrap(), text);
        }
    }
}
