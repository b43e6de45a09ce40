//! A Redis server for tests, and a key prefix of one's own on it.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A Redis server a test may use, and a fresh key prefix for it; the keys under the prefix
/// are deleted when dropped.
pub struct TestRedis {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// A prefix no other test uses, e.g. `oxedge:test:3f2a…`.
    pub prefix: String,
    _server: Option<Arc<RedisServer>>,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = ::redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else { return };
        let keys: Vec<String> =
            ::redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = ::redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

/// A Redis server and a fresh prefix starting with `tag`; `None` when `OXEDGE_SKIP_REDIS=1`.
///
/// # Panics
/// When no server answers and none can be started: a Redis test must fail, not pass silently.
pub async fn test_redis(tag: &str) -> Option<TestRedis> {
    if std::env::var("OXEDGE_SKIP_REDIS").is_ok_and(|v| v == "1") {
        eprintln!("OXEDGE_SKIP_REDIS=1: skipping a Redis test");
        return None;
    }
    let (url, server) = find_or_start().await.unwrap_or_else(|why| {
        panic!(
            "no Redis server for the tests: {why}. Install redis-server (apt-get install -y redis-server), \
             set OXEDGE_TEST_REDIS_URL, or set OXEDGE_SKIP_REDIS=1"
        )
    });
    let prefix = format!("{tag}:{}", uuid::Uuid::new_v4().simple());
    Some(TestRedis { url, prefix, _server: server })
}

/// A `redis-server` started here; stopped when the last test using it drops it.
struct RedisServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static SERVER: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());

async fn answers(url: &str) -> bool {
    let Ok(client) = ::redis::Client::open(url) else { return false };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), ping).await, Ok(Ok(_)))
}

async fn find_or_start() -> Result<(String, Option<Arc<RedisServer>>), String> {
    if let Ok(url) = std::env::var("OXEDGE_TEST_REDIS_URL") {
        return if answers(&url).await {
            Ok((url, None))
        } else {
            Err(format!("OXEDGE_TEST_REDIS_URL={url} does not answer PING"))
        };
    }
    let default = "redis://127.0.0.1:6379";
    if answers(default).await {
        return Ok((default.to_owned(), None));
    }
    if let Some(server) = SERVER.lock().unwrap_or_else(|p| p.into_inner()).upgrade() {
        return Ok((server.url.clone(), Some(server)));
    }
    let server = Arc::new(start().await?);
    let mut shared = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    // Another test may have started one meanwhile: use it, and let ours stop.
    if let Some(existing) = shared.upgrade() {
        return Ok((existing.url.clone(), Some(existing)));
    }
    *shared = Arc::downgrade(&server);
    Ok((server.url.clone(), Some(server)))
}

/// Starts `redis-server` on a free loopback port, retrying if the port is taken meanwhile.
async fn start() -> Result<RedisServer, String> {
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let mut server = RedisServer { child, url: format!("redis://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if answers(&server.url).await {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                last_error = format!("redis-server on port {port} exited: {status}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if last_error.is_empty() {
            last_error = format!("redis-server on port {port} did not answer PING within 10 s");
        }
    }
    Err(last_error)
}

/// A `redis-server` of the test's own (in memory), for tests that start a service before its
/// Redis, or stop Redis under it; `None` when `OXEDGE_SKIP_REDIS=1`.
///
/// # Panics
/// When `redis-server` cannot be started.
pub async fn private_redis() -> Option<crate::ServerProcess> {
    if crate::process::skipped("OXEDGE_SKIP_REDIS", "Redis") {
        return None;
    }
    Some(crate::process::launch_or_panic(PRIVATE).await)
}

const PRIVATE: crate::process::ServerKind = crate::process::ServerKind {
    program: "redis-server",
    args: private_args,
    hint: "install redis-server (apt-get install -y redis-server)",
};

fn private_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    let dir = dir.display().to_string();
    ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir]
        .map(str::to_owned)
        .to_vec()
}
