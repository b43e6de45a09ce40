//! A Mosquitto MQTT broker for tests.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

pub use crate::process::ServerProcess;
use crate::process::{self, ServerKind};

/// An MQTT broker a test may use.
pub struct TestMqtt {
    /// `mqtt://127.0.0.1:PORT`.
    pub url: String,
    /// Host of the broker.
    pub host: String,
    /// Port of the broker.
    pub port: u16,
    _server: Option<Arc<ServerProcess>>,
}

const HINT: &str = "Install Mosquitto (apt-get install -y mosquitto), set OXEDGE_TEST_MQTT_URL, \
                    or set OXEDGE_SKIP_MQTT=1";

fn kind(persistent: bool) -> ServerKind {
    let args: fn(u16, &Path) -> Vec<String> = if persistent { persistent_args } else { volatile_args };
    ServerKind { program: "mosquitto", args, hint: HINT }
}

fn volatile_args(port: u16, dir: &Path) -> Vec<String> {
    write_config(port, dir, false)
}

fn persistent_args(port: u16, dir: &Path) -> Vec<String> {
    write_config(port, dir, true)
}

fn write_config(port: u16, dir: &Path, persistent: bool) -> Vec<String> {
    let mut conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n\
         max_inflight_messages 1000\npersistence {persistent}\n"
    );
    if persistent {
        conf.push_str(&format!("persistence_location {}/\n", dir.display()));
        // Started as root, mosquitto drops to its own user: it must be able to write its
        // database here, or it restarts with no sessions and no queued messages.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("open the broker's directory");
    }
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).expect("write mosquitto.conf");
    vec!["-c".to_owned(), path.display().to_string()]
}

static SHARED: Mutex<Weak<ServerProcess>> = Mutex::new(Weak::new());

/// A broker from `OXEDGE_TEST_MQTT_URL`, else a `mosquitto` started on a free loopback
/// port and shared by the tests of this binary; `None` when `OXEDGE_SKIP_MQTT=1`.
///
/// # Panics
/// When no broker answers and none can be started: an MQTT test must fail, not pass silently.
pub async fn test_mqtt() -> Option<TestMqtt> {
    if process::skipped("OXEDGE_SKIP_MQTT", "Mosquitto") {
        return None;
    }
    if let Some(url) = process::from_env("OXEDGE_TEST_MQTT_URL").await {
        let addr = url.split_once("://").map_or(url.as_str(), |(_, a)| a).trim_end_matches('/').to_owned();
        let (host, port) = addr.rsplit_once(':').expect("OXEDGE_TEST_MQTT_URL must name a port");
        let port = port.parse().expect("OXEDGE_TEST_MQTT_URL must name a numeric port");
        return Some(TestMqtt { host: host.to_owned(), port, url, _server: None });
    }
    let server = process::shared_or_panic(&SHARED, kind(false)).await;
    Some(TestMqtt {
        url: format!("mqtt://127.0.0.1:{}", server.port()),
        host: "127.0.0.1".to_owned(),
        port: server.port(),
        _server: Some(server),
    })
}

/// A `mosquitto` of the test's own, for tests that stop and restart the broker; `None`
/// when `OXEDGE_SKIP_MQTT=1`. With `persistent`, it saves sessions and queued messages in
/// its directory on a polite [`stop`](ServerProcess::stop) and loads them on start.
///
/// # Panics
/// When `mosquitto` cannot be started.
pub async fn private_mosquitto(persistent: bool) -> Option<ServerProcess> {
    if process::skipped("OXEDGE_SKIP_MQTT", "Mosquitto") {
        return None;
    }
    Some(process::launch_or_panic(kind(persistent)).await)
}
