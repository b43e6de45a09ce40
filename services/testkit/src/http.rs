//! A small HTTP client for API tests: every answer as its status and JSON body.

use std::time::Duration;

use serde_json::Value;

/// An answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub body: Value,
    /// The `Content-Type` header.
    pub content_type: String,
}

impl Answer {
    /// The `message` of an error answer.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// Item `i` of a batch answer.
    pub fn item(&self, i: usize) -> &Value {
        &self.body[i]
    }
}

/// Talks to one service at `base` (`http://127.0.0.1:PORT/api/v3`).
#[derive(Debug, Clone)]
pub struct Api {
    /// The base URL paths are appended to.
    pub base: String,
    /// The underlying client (30 s timeout).
    pub client: reqwest::Client,
}

impl Api {
    /// A client for the service at `base`.
    pub fn new(base: impl Into<String>) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client");
        Self { base: base.into(), client }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `req` and reads the answer.
    ///
    /// # Panics
    /// When the request cannot be sent or the body read: the test fails there.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.expect("request failed");
        let status = res.status().as_u16();
        let content_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = res.bytes().await.expect("read body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body, content_type }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path))).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.client.delete(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.patch(self.url(path)).json(body)).await
    }

    /// `POST path` with a raw body and content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.send(self.client.post(self.url(path)).header("content-type", content_type).body(body)).await
    }

    /// Asserts that the service answers as one still waiting for `what` (see
    /// `oxedge_runtime::serve_while_starting`): ping 200, health 503 with its `starting`
    /// check naming `what`, and its own routes 503 (`route`, e.g. `/event/count`).
    ///
    /// # Panics
    /// When it answers otherwise: the test fails there.
    pub async fn assert_starting(&self, what: &str, route: &str) {
        assert_eq!(self.get("/ping").await.status, 200, "no ping while waiting for {what}");
        let health = self.get("/health").await;
        assert_eq!(health.status, 503, "health while waiting for {what}: {:?}", health.body);
        assert_eq!(health.body["checks"]["starting"], format!("waiting for {what}"), "{:?}", health.body);
        let answer = self.get(route).await;
        assert_eq!(answer.status, 503, "{route} while waiting for {what}: {:?}", answer.body);
        assert!(answer.message().contains(what), "{route} while waiting for {what}: {:?}", answer.body);
    }

    /// Polls `/health` until it answers 200; `false` if it did not within `limit`.
    pub async fn wait_healthy(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            while self.get("/health").await.status != 200 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .is_ok()
    }
}
