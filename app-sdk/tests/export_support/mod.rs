//! What the export tests share: an HTTP/1.1 endpoint served in the test (keep-alive, a status
//! chosen per request, an optional delay per request) that records what it is sent, and the
//! app context the exports are built from.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxedge_app_sdk::config::AppServiceConfig;
use oxedge_app_sdk::secrets::Secrets;
use oxedge_app_sdk::AppContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request the endpoint got, and the status it answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Chooses the status of a request from its method, path, headers and body (and may trim
/// what is recorded of it).
pub type Answer = Arc<dyn Fn(&mut Request) -> u16 + Send + Sync>;

/// An HTTP endpoint on 127.0.0.1 that records every request.
pub struct Endpoint {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: CancellationToken,
}

impl Endpoint {
    /// Serves on a free port.
    pub async fn start(answer: Answer, delay: Duration) -> Self {
        Self::start_on(0, answer, delay, Arc::default()).await
    }

    /// Serves on `port` (0: a free one), adding to `requests`.
    pub async fn start_on(port: u16, answer: Answer, delay: Duration, requests: Arc<Mutex<Vec<Request>>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the test endpoint");
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let (accepting, recorded) = (stop.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    () = accepting.cancelled() => return,
                };
                let (answer, recorded, stop) = (answer.clone(), recorded.clone(), accepting.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = serve(stream, answer, delay, recorded) => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
        Self { port, requests, stop }
    }

    /// The URL of `path` here.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops listening and closes every connection.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| (200..300).contains(&r.status)).cloned().collect()
    }

    /// Waits until `n` requests were answered 2xx (at most `within`), returning them.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n || tokio::time::Instant::now() > deadline {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Answers the requests of one connection, one after another.
async fn serve(mut stream: TcpStream, answer: Answer, delay: Duration, recorded: Arc<Mutex<Vec<Request>>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(mut request) = read_request(&mut stream, &mut buffer).await else { return };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        request.status = answer(&mut request);
        let response = format!("HTTP/1.1 {} Test\r\ncontent-length: 0\r\n\r\n", request.status);
        recorded.lock().unwrap().push(request);
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, path) = (start.next()?.to_owned(), start.next()?.to_owned());
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[body_start..body_start + length].to_vec();
    buffer.drain(..body_start + length);
    Some(Request { method, path, headers, body, status: 0 })
}

/// An app context whose store-and-forward is on (SQLite in `dir`) with fast retries.
pub fn app(dir: &std::path::Path, secrets: Secrets, tune: impl FnOnce(&mut AppServiceConfig)) -> AppContext {
    let mut config = AppServiceConfig { data_dir: dir.to_owned(), ..Default::default() };
    let forward = &mut config.store_and_forward;
    forward.enabled = true;
    forward.retry_interval = "50ms".to_owned();
    forward.max_retry_interval = "500ms".to_owned();
    tune(&mut config);
    AppContext::new(format!("export-test-{}", uuid::Uuid::new_v4().simple()), config, secrets, Arc::default())
}
