//! `HTTPExport`: POSTs or PUTs to an HTTP endpoint (EdgeX's `HTTPExport` and `HTTPSender`).
//!
//! A 2xx answer is delivered; 5xx, 408, 429, timeouts and connection errors are "unavailable"
//! (store-and-forward retries); any other 4xx is "rejected" (logged, counted, not retried).
//! A secret header (EdgeX's `HeaderName`, `SecretName`, `SecretValueKey`) is read from the
//! secret store, cached for a minute, and read again after a 401 or 403.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value as Json;

use super::{LazyForwarder, Outgoing, Sink, SinkError};
use crate::app::AppContext;
use crate::forward::Forwarder;
use crate::functions::params::de;
use crate::secrets::Secrets;
use crate::{Context, Data, Function, FunctionError};

/// How long a secret header value is used before it is read again.
const SECRET_TTL: Duration = Duration::from_secs(60);

/// POST or PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `POST`.
    #[default]
    Post,
    /// `PUT`.
    Put,
}

/// `HTTPExport`'s parameters, with EdgeX's names (any case through
/// [`from_parameters`](crate::functions::params::from_parameters)).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExportSettings {
    /// `post` or `put`.
    #[serde(rename = "Method", default)]
    pub method: Method,
    /// The endpoint, a template filled from the context: `https://cloud/api/{deviceName}`.
    #[serde(rename = "Url", deserialize_with = "de::text")]
    pub url: String,
    /// The `Content-Type` sent; empty: the data's own (`application/json` for events).
    #[serde(rename = "MimeType", default, deserialize_with = "de::text")]
    pub mime_type: String,
    /// Keeps what cannot be sent in the store-and-forward store (when enabled).
    #[serde(rename = "PersistOnError", default, deserialize_with = "de::flag")]
    pub persist_on_error: bool,
    /// Goes on with the next function whatever becomes of the send (sends are out of line:
    /// their outcome is reported through the message's confirmation).
    #[serde(rename = "ContinueOnSendError", default, deserialize_with = "de::flag")]
    pub continue_on_send_error: bool,
    /// Passes the input on to the next function (e.g. a second export).
    #[serde(rename = "ReturnInputData", default, deserialize_with = "de::flag")]
    pub return_input_data: bool,
    /// The header that carries the secret value.
    #[serde(rename = "HeaderName", default, deserialize_with = "de::text")]
    pub header_name: String,
    /// The secret holding the header's value.
    #[serde(rename = "SecretName", default, deserialize_with = "de::text")]
    pub secret_name: String,
    /// The key of the value in that secret.
    #[serde(rename = "SecretValueKey", default, deserialize_with = "de::text")]
    pub secret_value_key: String,
    /// Further headers: a JSON object as a string (as EdgeX writes it) or a map.
    #[serde(rename = "HttpRequestHeaders", default, deserialize_with = "headers")]
    pub http_request_headers: BTreeMap<String, String>,
    /// How long one request may take (Go duration; default 30s).
    #[serde(rename = "Timeout", default, deserialize_with = "de::optional_duration")]
    pub timeout: Option<Duration>,
}

fn headers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let object = match Json::deserialize(d)? {
        Json::String(s) if s.trim().is_empty() => return Ok(BTreeMap::new()),
        Json::String(s) => serde_json::from_str::<Json>(&s)
            .map_err(|e| serde::de::Error::custom(format!("expected a JSON object of headers: {e}")))?,
        other => other,
    };
    let Json::Object(map) = object else {
        return Err(serde::de::Error::custom("expected an object of header names and values"));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k, s)),
            other => Ok((k, other.to_string())),
        })
        .collect()
}

impl HttpExportSettings {
    /// Settings POSTing to `url`, content type from the data.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            method: Method::Post,
            url: url.into(),
            mime_type: String::new(),
            persist_on_error: true,
            continue_on_send_error: false,
            return_input_data: false,
            header_name: String::new(),
            secret_name: String::new(),
            secret_value_key: String::new(),
            http_request_headers: BTreeMap::new(),
            timeout: None,
        }
    }

    /// Checks the parameters together, naming the one at fault.
    fn check(&self) -> anyhow::Result<()> {
        if self.url.trim().is_empty() {
            bail!("Url must not be empty");
        }
        let url = self.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("Url {url:?} must start with http:// or https://");
        }
        let given = [&self.header_name, &self.secret_name, &self.secret_value_key].map(|s| !s.is_empty());
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            bail!("HeaderName, SecretName and SecretValueKey must be given together");
        }
        if !self.header_name.is_empty() {
            HeaderName::try_from(self.header_name.as_str()).context("HeaderName")?;
        }
        if !self.mime_type.is_empty() {
            HeaderValue::try_from(self.mime_type.as_str()).context("MimeType")?;
        }
        Ok(())
    }
}

/// The secret header: its name, where its value is, and the value last read.
struct SecretHeader {
    name: HeaderName,
    secret: String,
    key: String,
    cached: Mutex<Option<(HeaderValue, Instant)>>,
}

/// An HTTP endpoint as a [`Sink`].
pub struct HttpSink {
    client: reqwest::Client,
    method: reqwest::Method,
    headers: HeaderMap,
    mime_type: Option<HeaderValue>,
    secret_header: Option<SecretHeader>,
    secrets: Secrets,
    reachable: AtomicBool,
    describe: String,
}

impl HttpSink {
    /// A sink as `settings` say, reading the secret header from `secrets`.
    pub fn new(settings: &HttpExportSettings, secrets: &Secrets) -> anyhow::Result<Self> {
        settings.check()?;
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.http_request_headers {
            let header = HeaderName::try_from(name.as_str()).with_context(|| format!("HttpRequestHeaders {name:?}"))?;
            let value =
                HeaderValue::try_from(value.as_str()).with_context(|| format!("HttpRequestHeaders {name:?}"))?;
            headers.insert(header, value);
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout.unwrap_or(Duration::from_secs(30)))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("HTTP client")?;
        let method = match settings.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let secret_header = (!settings.header_name.is_empty()).then(|| SecretHeader {
            name: HeaderName::try_from(settings.header_name.as_str()).expect("checked"),
            secret: settings.secret_name.clone(),
            key: settings.secret_value_key.clone(),
            cached: Mutex::new(None),
        });
        Ok(Self {
            client,
            describe: format!("HTTPExport {method} {}", settings.url.trim()),
            method,
            headers,
            mime_type: (!settings.mime_type.is_empty())
                .then(|| HeaderValue::try_from(settings.mime_type.as_str()).expect("checked")),
            secret_header,
            secrets: secrets.clone(),
            reachable: AtomicBool::new(true),
        })
    }

    async fn secret_value(&self, header: &SecretHeader) -> Result<HeaderValue, SinkError> {
        if let Some((value, at)) = header.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < SECRET_TTL {
                return Ok(value.clone());
            }
        }
        let value = self
            .secrets
            .value(&header.secret, &header.key)
            .await
            .map_err(|e| SinkError::Unavailable(format!("header {}: {e:#}", header.name)))?;
        let value = HeaderValue::try_from(value).map_err(|_| {
            SinkError::Rejected(format!("header {}: the secret value is not a valid header value", header.name))
        })?;
        *header.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((value.clone(), Instant::now()));
        Ok(value)
    }
}

#[async_trait]
impl Sink for HttpSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn send(&self, message: &Outgoing) -> Result<(), SinkError> {
        let content_type = match &self.mime_type {
            Some(mime) => mime.clone(),
            None => HeaderValue::try_from(message.content_type.as_str()).map_err(|_| {
                SinkError::Rejected(format!("content type {:?} is not a header value", message.content_type))
            })?,
        };
        let mut request = self
            .client
            .request(self.method.clone(), &message.destination)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, content_type)
            .body(message.payload.clone());
        if let Some(header) = &self.secret_header {
            request = request.header(header.name.clone(), self.secret_value(header).await?);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => return Err(SinkError::Rejected(format!("{}: {e}", message.destination))),
            Err(e) => {
                self.reachable.store(false, Ordering::Relaxed);
                return Err(SinkError::Unavailable(format!("{}: {e}", message.destination)));
            }
        };
        self.reachable.store(true, Ordering::Relaxed);
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let why = format!("{} answered {status}", message.destination);
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            return Err(SinkError::Unavailable(why));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            if let Some(header) = &self.secret_header {
                *header.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
        Err(SinkError::Rejected(why))
    }

    fn is_connected(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
}

/// The `HTTPExport` function: sends its input (as [`Data::to_payload`] makes it) to the URL
/// its template gives, through store-and-forward. Returns `Ok(None)`, or the input with
/// `ReturnInputData` or `ContinueOnSendError`; the message is acknowledged once its
/// confirmation resolves.
pub struct HttpExport {
    url: String,
    pass_on: bool,
    forwarder: LazyForwarder,
}

impl HttpExport {
    /// Checks `settings` and starts the export's forwarder in the background (see
    /// [the module](super)).
    pub fn new(settings: HttpExportSettings, app: &AppContext) -> anyhow::Result<Self> {
        let sink = Arc::new(HttpSink::new(&settings, app.secrets()).context("HTTPExport")?);
        let name = sink.describe();
        let make_sink: super::MakeSink = Box::new(move || {
            let sink = sink.clone() as Arc<dyn Sink>;
            Box::pin(async move { Ok(sink) })
        });
        Ok(Self {
            url: settings.url.trim().to_owned(),
            pass_on: settings.return_input_data || settings.continue_on_send_error,
            forwarder: LazyForwarder::new(name, settings.persist_on_error, app, make_sink),
        })
    }

    /// The export's forwarder, once started (its name labels the export metrics).
    pub fn forwarder(&self) -> Option<&Forwarder> {
        self.forwarder.started()
    }
}

#[async_trait]
impl Function for HttpExport {
    fn name(&self) -> &str {
        "HTTPExport"
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let message = super::outgoing(ctx, &data, &self.url, BTreeMap::new())?;
        ctx.add_confirmation(self.forwarder.get().await.submit(message).await);
        Ok(self.pass_on.then_some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(parameters: Json) -> Result<HttpExportSettings, String> {
        crate::functions::params::from_parameters(parameters.as_object().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn settings_read_edgex_parameters_and_check_them_together() {
        let s = settings(json!({
            "method": "put", "url": "http://cloud/{deviceName}", "mimetype": "", "persistonerror": "true",
            "headername": "Authorization", "secretname": "cloud", "secretvaluekey": "token",
            "httprequestheaders": "{\"X-Site\": \"plant-1\"}"
        }))
        .unwrap();
        assert_eq!(s.method, Method::Put);
        assert_eq!(s.http_request_headers.get("X-Site").map(String::as_str), Some("plant-1"));
        assert!(HttpSink::new(&s, &Secrets::default()).is_ok());

        let partial =
            settings(json!({"method": "post", "url": "http://cloud", "headername": "Authorization"})).unwrap();
        let error = HttpSink::new(&partial, &Secrets::default()).err().unwrap().to_string();
        assert!(error.contains("HeaderName, SecretName and SecretValueKey"), "{error}");
        let error = HttpSink::new(&HttpExportSettings::new("ftp://x"), &Secrets::default()).err().unwrap().to_string();
        assert!(error.contains("Url"), "{error}");
        assert!(settings(json!({"url": "http://x", "httprequestheaders": "[1]"}))
            .unwrap_err()
            .contains("HttpRequestHeaders"));
    }
}
