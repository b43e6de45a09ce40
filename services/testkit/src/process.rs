//! A server process on a loopback port that tests start, stop and start again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How to run one kind of server.
#[derive(Clone, Copy)]
pub(crate) struct ServerKind {
    /// The program, e.g. `mosquitto`.
    pub program: &'static str,
    /// Its arguments for a port and a private directory (which it may write files to first).
    pub args: fn(u16, &Path) -> Vec<String>,
    /// What to tell someone who does not have it.
    pub hint: &'static str,
}

/// A server started by a test, with a private directory. It keeps its port and directory
/// across [`stop`](Self::stop) and [`start`](Self::start), so clients can reconnect and
/// persistent state (JetStream's store) survives. Killed when dropped.
pub struct ServerProcess {
    kind: ServerKind,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts the server on a free loopback port, retrying when the port is taken meanwhile.
    pub(crate) async fn launch(kind: ServerKind) -> Result<Self, String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("cannot find a free port: {e}"))?
                .port();
            let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            let mut server = Self { kind, port, dir, child: None };
            match server.start().await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its private directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts it (again) on its port; returns once it accepts connections.
    pub async fn start(&mut self) -> Result<(), String> {
        if self.is_running() {
            return Ok(());
        }
        let (program, port) = (self.kind.program, self.port);
        let child = Command::new(program)
            .args((self.kind.args)(port, self.dir.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("{program} on port {port} exited: {status}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!("{program} on port {port} did not accept connections within 10 s"))
    }

    /// Stops it as a crash would: SIGKILL, no goodbye to its clients.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }

    /// Stops it politely (SIGTERM, so it saves what it persists), killing it after 5 s.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The server of `kind` shared by the tests of one binary while any of them holds it.
pub(crate) async fn shared(
    slot: &'static Mutex<Weak<ServerProcess>>,
    kind: ServerKind,
) -> Result<Arc<ServerProcess>, String> {
    if let Some(server) = slot.lock().unwrap_or_else(|p| p.into_inner()).upgrade() {
        return Ok(server);
    }
    let server = Arc::new(ServerProcess::launch(kind).await?);
    let mut shared = slot.lock().unwrap_or_else(|p| p.into_inner());
    // Another test may have started one meanwhile: use it, and let ours stop.
    if let Some(existing) = shared.upgrade() {
        return Ok(existing);
    }
    *shared = Arc::downgrade(&server);
    Ok(server)
}

/// Whether the environment asks to skip tests needing this server (`{var}=1`).
pub(crate) fn skipped(var: &str, what: &str) -> bool {
    let skip = std::env::var(var).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("{var}=1: skipping a {what} test");
    }
    skip
}

/// A server's URL from `var`, if set; panics when it does not accept connections.
pub(crate) async fn from_env(var: &str) -> Option<String> {
    let url = std::env::var(var).ok()?;
    let addr = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest).trim_end_matches('/');
    let addr = addr.rsplit_once('@').map_or(addr, |(_, host)| host);
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Some(url),
        _ => panic!("{var}={url} does not accept connections"),
    }
}

/// Starts a private server of `kind`, panicking with the install hint when it cannot.
pub(crate) async fn launch_or_panic(kind: ServerKind) -> ServerProcess {
    ServerProcess::launch(kind).await.unwrap_or_else(|why| panic!("{why}. {}", kind.hint))
}

/// The shared server of `kind`, panicking with the install hint when it cannot start.
pub(crate) async fn shared_or_panic(slot: &'static Mutex<Weak<ServerProcess>>, kind: ServerKind) -> Arc<ServerProcess> {
    shared(slot, kind).await.unwrap_or_else(|why| panic!("{why}. {}", kind.hint))
}
