//! A NATS server with JetStream for tests.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

pub use crate::process::ServerProcess;
use crate::process::{self, ServerKind};

/// A NATS server a test may use.
pub struct TestNats {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    _server: Option<Arc<ServerProcess>>,
}

const KIND: ServerKind = ServerKind {
    program: "nats-server",
    args: nats_args,
    hint: "Install nats-server (apt-get install -y nats-server), set OXEDGE_TEST_NATS_URL, \
           or set OXEDGE_SKIP_NATS=1",
};

fn nats_args(port: u16, dir: &Path) -> Vec<String> {
    // 8 MiB messages, as the bus tests send 2 MB payloads (the default limit is 1 MiB).
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, "max_payload: 8388608\n").expect("write nats.conf");
    let args = ["-c", &conf.display().to_string(), "-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"];
    args.into_iter().map(str::to_owned).chain([dir.display().to_string()]).collect()
}

static SHARED: Mutex<Weak<ServerProcess>> = Mutex::new(Weak::new());

/// A server from `OXEDGE_TEST_NATS_URL`, else a `nats-server -js` started on a free
/// loopback port and shared by the tests of this binary; `None` when `OXEDGE_SKIP_NATS=1`.
///
/// # Panics
/// When no server answers and none can be started: a NATS test must fail, not pass silently.
pub async fn test_nats() -> Option<TestNats> {
    if process::skipped("OXEDGE_SKIP_NATS", "NATS") {
        return None;
    }
    if let Some(url) = process::from_env("OXEDGE_TEST_NATS_URL").await {
        return Some(TestNats { url, _server: None });
    }
    let server = process::shared_or_panic(&SHARED, KIND).await;
    Some(TestNats { url: format!("nats://127.0.0.1:{}", server.port()), _server: Some(server) })
}

/// A `nats-server -js` of the test's own, for tests that stop and restart it (its JetStream
/// store stays in its directory); `None` when `OXEDGE_SKIP_NATS=1`.
///
/// # Panics
/// When `nats-server` cannot be started.
pub async fn private_nats() -> Option<ServerProcess> {
    if process::skipped("OXEDGE_SKIP_NATS", "NATS") {
        return None;
    }
    Some(process::launch_or_panic(KIND).await)
}
