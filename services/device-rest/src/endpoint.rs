//! Devices with an HTTP endpoint: EdgeX's `REST` protocol properties and the requests that read
//! (GET) and write (PUT) a resource there.
//!
//! As EdgeX's device-rest (v3): a device with protocol `REST` and properties `Host`, `Port` and
//! `Path` has its resource `r` at `http://{Host}:{Port}/{Path}/r` (`http://{Host}:{Port}/r`
//! without a `Path`), the command's other query parameters appended. A GET answer of 2xx is the
//! value (see [`crate::convert`]); a PUT sends it. Unlike EdgeX, `Path` may be left out, `Port`
//! may be a number, and names are percent-encoded in the URL.

use std::time::Duration;

use oxedge_device_sdk::{DriverError, DriverResult, Protocols};
use reqwest::{StatusCode, Url};
use serde_json::Value as Json;

/// EdgeX's protocol name for devices with an HTTP endpoint.
pub const PROTOCOL: &str = "REST";
/// The device's host name or address.
pub const HOST: &str = "Host";
/// The device's TCP port.
pub const PORT: &str = "Port";
/// The path the device's resources are under; optional.
pub const PATH: &str = "Path";

/// Where a device's resources are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
}

impl Endpoint {
    /// The endpoint the `REST` protocol properties of `protocols` give; `Ok(None)` when the
    /// device has none (it only pushes readings). The error names the property.
    pub fn of(protocols: &Protocols) -> Result<Option<Self>, String> {
        let Some(props) = protocols.get(PROTOCOL) else { return Ok(None) };
        let text = |key: &str| -> Result<Option<String>, String> {
            match props.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(Json::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(format!("protocol {PROTOCOL}: {key} must be a string, found {other}")),
            }
        };
        let host = text(HOST)?.filter(|h| !h.is_empty()).ok_or(format!("protocol {PROTOCOL}: {HOST} is missing"))?;
        let port = text(PORT)?.filter(|p| !p.is_empty()).ok_or(format!("protocol {PROTOCOL}: {PORT} is missing"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("protocol {PROTOCOL}: {PORT} '{port}' is not a port number (1-65535)"))?;
        let path = text(PATH)?.unwrap_or_default();
        let host_part = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.clone() };
        let mut base = Url::parse(&format!("http://{host_part}:{port}/"))
            .ok()
            .filter(|u| u.host_str().is_some() && u.path() == "/" && u.query().is_none())
            .ok_or_else(|| format!("protocol {PROTOCOL}: {HOST} '{host}' is not a host name or address"))?;
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.clear().extend(path.split('/').filter(|s| !s.is_empty()));
        }
        Ok(Some(Self { base }))
    }

    /// The URL of `resource`, with the query `raw_query` (already encoded) if not empty.
    pub fn url(&self, resource: &str, raw_query: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(resource);
        }
        if !raw_query.is_empty() {
            url.set_query(Some(raw_query));
        }
        url
    }
}

/// One HTTP exchange with a device, with what errors need to name.
pub(crate) struct Exchange<'a> {
    /// The HTTP client.
    pub client: &'a reqwest::Client,
    /// The device's name.
    pub device: &'a str,
    /// How long the whole exchange may take; zero: no limit of its own.
    pub timeout: Duration,
    /// The largest answer body read.
    pub max_body: usize,
}

impl Exchange<'_> {
    /// Sends `request` and returns the answer's content type and body, or the error naming the
    /// device and the URL: [`DriverError::Timeout`] when it did not answer in time,
    /// [`DriverError::Failed`] when it cannot be reached or answers 5xx (or another failure),
    /// [`DriverError::Invalid`] when it refuses the request (4xx).
    pub async fn send(&self, mut request: reqwest::RequestBuilder, what: &str) -> DriverResult<(String, Vec<u8>)> {
        if !self.timeout.is_zero() {
            request = request.timeout(self.timeout);
        }
        let fail = |e: reqwest::Error| self.transport_error(what, e);
        let mut response = request.send().await.map_err(fail)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(DriverError::Failed(format!(
                    "device {}: {what}: the answer is larger than {} bytes (driver.max_response_size)",
                    self.device, self.max_body
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok((content_type, body));
        }
        let detail = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned();
        let message = format!(
            "device {}: {what} answered {status}{}",
            self.device,
            if detail.is_empty() { String::new() } else { format!(": {detail}") }
        );
        Err(match status {
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => DriverError::Timeout(message),
            s if s.is_client_error() => DriverError::Invalid(message),
            _ => DriverError::Failed(message),
        })
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> DriverError {
        if e.is_timeout() {
            return DriverError::Timeout(format!(
                "device {}: {what}: no answer within {:?} (driver.request_timeout)",
                self.device, self.timeout
            ));
        }
        // reqwest's own message only says that sending failed; the causes say why.
        let e = e.without_url();
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            why.push_str(": ");
            why.push_str(&cause.to_string());
            source = cause.source();
        }
        DriverError::Failed(format!("device {}: {what}: {why}", self.device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(props: Json) -> Result<Option<Endpoint>, String> {
        let protocols: Protocols = serde_json::from_value(json!({ "REST": props })).unwrap();
        Endpoint::of(&protocols)
    }

    #[test]
    fn urls_are_built_as_edgex_builds_them() {
        let e = endpoint(json!({"Host": "127.0.0.1", "Port": "5000", "Path": "api"})).unwrap().unwrap();
        assert_eq!(e.url("int8", "").as_str(), "http://127.0.0.1:5000/api/int8");
        assert_eq!(e.url("int8", "a=1&b=x+y").as_str(), "http://127.0.0.1:5000/api/int8?a=1&b=x+y");
        let e = endpoint(json!({"Host": "dev.local", "Port": 80, "Path": "/v1/things/"})).unwrap().unwrap();
        assert_eq!(e.url("a b/c", "").as_str(), "http://dev.local/v1/things/a%20b%2Fc");
        let e = endpoint(json!({"Host": "::1", "Port": "8080"})).unwrap().unwrap();
        assert_eq!(e.url("x", "").as_str(), "http://[::1]:8080/x");
        let no_rest: Protocols = serde_json::from_value(json!({ "other": {} })).unwrap();
        assert_eq!(Endpoint::of(&no_rest), Ok(None));
    }

    #[test]
    fn bad_properties_are_named() {
        assert!(endpoint(json!({"Port": "1"})).unwrap_err().contains("Host is missing"));
        assert!(endpoint(json!({"Host": "h"})).unwrap_err().contains("Port is missing"));
        assert!(endpoint(json!({"Host": "h", "Port": "70000"})).unwrap_err().contains("Port '70000'"));
        assert!(endpoint(json!({"Host": "h", "Port": "0"})).unwrap_err().contains("not a port number"));
        assert!(endpoint(json!({"Host": "a b", "Port": "1"})).unwrap_err().contains("Host 'a b'"));
        assert!(endpoint(json!({"Host": "h/x?y", "Port": "1"})).unwrap_err().contains("Host"));
        assert!(endpoint(json!({"Host": ["h"], "Port": "1"})).unwrap_err().contains("Host must be a string"));
    }
}
