//! The Python interpreter with the test peers (pymodbus, paho-mqtt) installed.

use std::path::PathBuf;

/// The interpreter from `OXEDGE_TEST_PYTHON`, else the venv `scripts/test-peers.sh` makes
/// under the workspace's target dir.
///
/// # Panics
/// When neither exists: a test that needs a peer must fail, not pass silently.
pub fn test_python() -> PathBuf {
    if let Some(path) = std::env::var_os("OXEDGE_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-peers/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python test peers: run scripts/test-peers.sh (it installs pymodbus and paho-mqtt into \
         target/test-peers/venv), or set OXEDGE_TEST_PYTHON to a python that has them"
    );
    venv
}
