//! Typed REST clients for the EdgeX v3 APIs other services call: core-metadata
//! (device services, profiles, devices, provision watchers) and a device
//! service's command API. Enabled with the `client` feature.
//!
//! Every failure is an [`EdgeXError`]: an EdgeX error answer keeps its status
//! (as an [`ErrorKind`]) and message; an unreachable peer is 503; a peer that
//! does not answer in time is 504.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::device::{Device, UpdateDevice};
use crate::device_profile::DeviceProfile;
use crate::device_service::{DeviceService, UpdateDeviceService};
use crate::envelope::{BaseRequest, BaseResponse, BaseWithIdResponse, API_VERSION};
use crate::error::{EdgeXError, ErrorKind, Result};
use crate::provision_watcher::ProvisionWatcher;
use crate::requests::*;

/// Page size used when a client reads a whole list.
const PAGE: usize = 500;

/// An HTTP client bound to one service's base URL (`http://host:port`).
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: Url,
}

impl RestClient {
    /// A client for the service at `base_url`; every request gives up after `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self> {
        let base = parse_base(base_url)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| EdgeXError::server(format!("HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// A client for the service at `base_url` sharing this one's connections and timeout.
    pub fn at(&self, base_url: &str) -> Result<Self> {
        Ok(Self { http: self.http.clone(), base: parse_base(base_url)? })
    }

    /// `base` + `/api/v3/` + the segments, each percent-encoded, + the query pairs.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("checked in new");
            path.pop_if_empty().push("api").push("v3");
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends `method` to `url` with an optional JSON body; returns the status and body
    /// of any answer, or the transport failure as 503/504.
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<(StatusCode, bytes::Bytes)> {
        let mut req = self.http.request(method, url.clone());
        if let Some(body) = body {
            req = req.json(body);
        }
        let answer = req.send().await.map_err(|e| transport_error(&url, &e))?;
        let status = answer.status();
        let body = answer.bytes().await.map_err(|e| transport_error(&url, &e))?;
        Ok((status, body))
    }

    /// Sends and decodes a 2xx JSON answer as `T`; an error answer becomes its EdgeXError.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T> {
        let (status, bytes) = self.send(method, url.clone(), body).await?;
        if !status.is_success() {
            return Err(error_answer(status, &bytes, &url));
        }
        serde_json::from_slice(&bytes).map_err(|e| EdgeXError::server(format!("{url}: unexpected answer: {e}")))
    }

    /// GETs every page of a list endpoint, `pick` taking the items out of each page.
    async fn all_pages<R: DeserializeOwned, T>(
        &self,
        segments: &[&str],
        pick: impl Fn(R) -> (u64, Vec<T>),
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        loop {
            let offset = all.len().to_string();
            let limit = PAGE.to_string();
            let url = self.url(segments, &[("offset", &offset), ("limit", &limit)]);
            let page: R = self.call(Method::GET, url, None::<&()>).await?;
            let (total, items) = pick(page);
            let got = items.len();
            all.extend(items);
            if got == 0 || all.len() as u64 >= total {
                return Ok(all);
            }
        }
    }

    /// POSTs a one-item batch and returns the created id, or the item's error.
    async fn add_one<B: Serialize>(&self, segments: &[&str], item: B) -> Result<String> {
        let url = self.url(segments, &[]);
        let answers: Vec<BaseWithIdResponse> = self.call(Method::POST, url.clone(), Some(&[item])).await?;
        let first =
            answers.into_iter().next().ok_or_else(|| EdgeXError::server(format!("{url}: empty batch answer")))?;
        item_result(&first.base, &url)?;
        Ok(first.id)
    }

    /// PATCHes a one-item batch and returns the item's error if it failed.
    async fn patch_one<B: Serialize>(&self, segments: &[&str], item: B) -> Result<()> {
        let url = self.url(segments, &[]);
        let answers: Vec<BaseResponse> = self.call(Method::PATCH, url.clone(), Some(&[item])).await?;
        let first =
            answers.into_iter().next().ok_or_else(|| EdgeXError::server(format!("{url}: empty batch answer")))?;
        item_result(&first, &url)
    }
}

/// `base_url` parsed as the base of API URLs.
fn parse_base(base_url: &str) -> Result<Url> {
    let base = Url::parse(base_url).map_err(|e| EdgeXError::invalid(format!("base URL '{base_url}': {e}")))?;
    if base.cannot_be_a_base() {
        return Err(EdgeXError::invalid(format!("base URL '{base_url}' cannot carry a path")));
    }
    Ok(base)
}

/// The status code EdgeX uses mapped back to the kind it stands for.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        400 => ErrorKind::ContractInvalid,
        404 => ErrorKind::EntityDoesNotExist,
        405 => ErrorKind::MethodNotAllowed,
        409 => ErrorKind::DuplicateName,
        413 => ErrorKind::PayloadTooLarge,
        415 => ErrorKind::UnsupportedMediaType,
        416 => ErrorKind::RangeNotSatisfiable,
        423 => ErrorKind::ServiceLocked,
        503 | 502 => ErrorKind::ServiceUnavailable,
        504 => ErrorKind::Timeout,
        s if (400..500).contains(&s) => ErrorKind::ContractInvalid,
        _ => ErrorKind::ServerError,
    }
}

/// An EdgeX error answer (`{"statusCode":…,"message":…}`) as an EdgeXError.
pub fn error_answer(status: StatusCode, body: &[u8], url: &Url) -> EdgeXError {
    let message = serde_json::from_slice::<BaseResponse>(body)
        .ok()
        .map(|b| b.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    let message = if message.is_empty() { format!("{url} answered {status}") } else { message };
    EdgeXError::new(kind_of_status(status.as_u16()), message)
}

fn item_result(base: &BaseResponse, url: &Url) -> Result<()> {
    if (200..300).contains(&base.status_code) {
        return Ok(());
    }
    let message =
        if base.message.is_empty() { format!("{url} answered {}", base.status_code) } else { base.message.clone() };
    Err(EdgeXError::new(kind_of_status(base.status_code), message))
}

fn transport_error(url: &Url, e: &reqwest::Error) -> EdgeXError {
    let host = url.host_str().unwrap_or("?");
    let port = url.port_or_known_default().unwrap_or(0);
    if e.is_timeout() {
        EdgeXError::new(ErrorKind::Timeout, format!("{host}:{port} did not answer in time"))
    } else {
        EdgeXError::new(ErrorKind::ServiceUnavailable, format!("{host}:{port} is unreachable: {e}"))
    }
}

fn base() -> BaseRequest {
    BaseRequest { api_version: API_VERSION.to_owned(), request_id: String::new() }
}

/// A client of core-metadata's device service, profile, device and provision watcher API.
#[derive(Debug, Clone)]
pub struct MetadataClient {
    rest: RestClient,
}

impl MetadataClient {
    /// A client of the core-metadata at `base_url` (`http://localhost:59881`).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self> {
        Ok(Self { rest: RestClient::new(base_url, timeout)? })
    }

    /// `GET /ping` answered: core-metadata is up.
    pub async fn ping(&self) -> Result<()> {
        let url = self.rest.url(&["ping"], &[]);
        self.rest.call::<(), serde_json::Value>(Method::GET, url, None).await.map(drop)
    }

    /// The device service named `name`.
    pub async fn device_service(&self, name: &str) -> Result<DeviceService> {
        let url = self.rest.url(&["deviceservice", "name", name], &[]);
        let r: DeviceServiceResponse = self.rest.call(Method::GET, url, None::<&()>).await?;
        Ok(r.service)
    }

    /// Adds a device service; returns its id.
    pub async fn add_device_service(&self, service: DeviceService) -> Result<String> {
        self.rest.add_one(&["deviceservice"], AddDeviceServiceRequest { base: base(), service }).await
    }

    /// Changes the fields of a device service that `update` names.
    pub async fn update_device_service(&self, service: UpdateDeviceService) -> Result<()> {
        self.rest.patch_one(&["deviceservice"], UpdateDeviceServiceRequest { base: base(), service }).await
    }

    /// The device profile named `name`.
    pub async fn device_profile(&self, name: &str) -> Result<DeviceProfile> {
        let url = self.rest.url(&["deviceprofile", "name", name], &[]);
        let r: DeviceProfileResponse = self.rest.call(Method::GET, url, None::<&()>).await?;
        Ok(r.profile)
    }

    /// Adds a device profile; returns its id.
    pub async fn add_device_profile(&self, profile: DeviceProfile) -> Result<String> {
        self.rest.add_one(&["deviceprofile"], DeviceProfileRequest { base: base(), profile }).await
    }

    /// The device named `name`.
    pub async fn device(&self, name: &str) -> Result<Device> {
        let url = self.rest.url(&["device", "name", name], &[]);
        let r: DeviceResponse = self.rest.call(Method::GET, url, None::<&()>).await?;
        Ok(r.device)
    }

    /// Every device, all pages.
    pub async fn all_devices(&self) -> Result<Vec<Device>> {
        self.rest.all_pages(&["device", "all"], |r: MultiDevicesResponse| (r.total_count, r.devices)).await
    }

    /// One page of devices (`offset`, `limit`; `limit` -1 asks for as many as core-metadata
    /// returns at most), those with any of `labels` when given: the total count and the page.
    pub async fn devices(&self, offset: u64, limit: i64, labels: &[String]) -> Result<(u64, Vec<Device>)> {
        let (offset, limit, labels) = (offset.to_string(), limit.to_string(), labels.join(","));
        let mut query = vec![("offset", offset.as_str()), ("limit", limit.as_str())];
        if !labels.is_empty() {
            query.push(("labels", labels.as_str()));
        }
        let url = self.rest.url(&["device", "all"], &query);
        let r: MultiDevicesResponse = self.rest.call(Method::GET, url, None::<&()>).await?;
        Ok((r.total_count, r.devices))
    }

    /// Every device of the device service `service`, all pages.
    pub async fn devices_of_service(&self, service: &str) -> Result<Vec<Device>> {
        self.rest
            .all_pages(&["device", "service", "name", service], |r: MultiDevicesResponse| (r.total_count, r.devices))
            .await
    }

    /// Adds a device; returns its id.
    pub async fn add_device(&self, device: Device) -> Result<String> {
        self.rest.add_one(&["device"], AddDeviceRequest { base: base(), device }).await
    }

    /// Changes the fields of a device that `device` names (by `name` or `id`).
    pub async fn update_device(&self, device: UpdateDevice) -> Result<()> {
        self.rest.patch_one(&["device"], UpdateDeviceRequest { base: base(), device }).await
    }

    /// Every provision watcher of the device service `service`, all pages.
    pub async fn provision_watchers_of_service(&self, service: &str) -> Result<Vec<ProvisionWatcher>> {
        self.rest
            .all_pages(&["provisionwatcher", "service", "name", service], |r: MultiProvisionWatchersResponse| {
                (r.total_count, r.provision_watchers)
            })
            .await
    }

    /// Adds a provision watcher; returns its id.
    pub async fn add_provision_watcher(&self, provision_watcher: ProvisionWatcher) -> Result<String> {
        self.rest.add_one(&["provisionwatcher"], AddProvisionWatcherRequest { base: base(), provision_watcher }).await
    }
}

/// A device service's answer to a command, as it came: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header (empty when there was none).
    pub content_type: String,
    /// The body.
    pub body: bytes::Bytes,
}

/// A client of device services' command API (`/api/v3/device/name/{name}/{command}`), each
/// call addressed to one service's `baseAddress`. Connections are shared between services.
#[derive(Debug, Clone)]
pub struct DeviceServiceClient {
    rest: RestClient,
}

impl DeviceServiceClient {
    /// A client whose every command gives up after `timeout` (then 504).
    pub fn new(timeout: Duration) -> Result<Self> {
        Ok(Self { rest: RestClient::new("http://localhost", timeout)? })
    }

    /// `GET {base_address}/api/v3/device/name/{device}/{command}?{query}`: reads a command.
    /// `query` is passed on as it is (`ds-pushevent=true&x=1`); `correlation_id`, when not
    /// empty, goes as `X-Correlation-ID`. Any answer is returned as it came, error answers
    /// included; only a failure to get one is an error (503 unreachable, 504 too slow).
    pub async fn get_command(
        &self,
        base_address: &str,
        device: &str,
        command: &str,
        query: &str,
        correlation_id: &str,
    ) -> Result<CommandAnswer> {
        self.command(Method::GET, base_address, device, command, query, correlation_id, None).await
    }

    /// `PUT {base_address}/api/v3/device/name/{device}/{command}?{query}` with `settings`
    /// (resource name → value) as the JSON body: writes a command. Answers as
    /// [`get_command`](Self::get_command).
    pub async fn set_command(
        &self,
        base_address: &str,
        device: &str,
        command: &str,
        query: &str,
        correlation_id: &str,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<CommandAnswer> {
        self.command(Method::PUT, base_address, device, command, query, correlation_id, Some(settings)).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn command(
        &self,
        method: Method,
        base_address: &str,
        device: &str,
        command: &str,
        query: &str,
        correlation_id: &str,
        settings: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<CommandAnswer> {
        let rest = self.rest.at(base_address)?;
        let mut url = rest.url(&["device", "name", device, command], &[]);
        if !query.is_empty() {
            url.set_query(Some(query));
        }
        let mut req = rest.http.request(method, url.clone());
        if !correlation_id.is_empty() {
            req = req.header("X-Correlation-ID", correlation_id);
        }
        if let Some(settings) = settings {
            req = req.json(settings);
        }
        let answer = req.send().await.map_err(|e| transport_error(&url, &e))?;
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = answer.bytes().await.map_err(|e| transport_error(&url, &e))?;
        Ok(CommandAnswer { status, content_type, body })
    }
}
