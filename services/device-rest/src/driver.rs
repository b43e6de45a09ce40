//! [`RestDriver`]: devices that push readings over HTTP ([`crate::ingest`]) and devices with an
//! HTTP endpoint that commands read and write ([`crate::endpoint`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oxedge_contracts::validate::parse_duration;
use oxedge_contracts::{Device, DeviceResource, EdgeXError, ErrorKind};
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    async_trait, CommandRequest, CommandValue, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk,
};
use serde::Deserialize;

use crate::convert;
use crate::endpoint::{Endpoint, Exchange, PROTOCOL};

/// The attribute under which the SDK passes a command's other query parameters.
const URL_RAW_QUERY: &str = "urlRawQuery";

/// The driver's settings: the `driver` section of the service's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long one HTTP request to a device may take, answer included (Go duration); `0`:
    /// only the SDK's `device.command_timeout` bounds it.
    pub request_timeout: String,
    /// The largest answer a device may give to a GET, in bytes; a larger one fails the read.
    pub max_response_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { request_timeout: "5s".to_owned(), max_response_size: 16 * 1024 * 1024 }
    }
}

impl Settings {
    /// `request_timeout` as a duration; the error names the key.
    pub fn request_timeout(&self) -> Result<Duration, String> {
        parse_duration(&self.request_timeout).ok_or_else(|| {
            format!("driver.request_timeout: '{}' is not a duration such as 500ms or 5s", self.request_timeout)
        })
    }
}

/// What the driver and its HTTP route share.
pub(crate) struct Inner {
    sdk: OnceLock<Sdk>,
    settings: OnceLock<(Settings, Duration)>,
    client: OnceLock<reqwest::Client>,
}

impl Inner {
    /// The SDK's handle; 503 before the driver is initialized.
    pub(crate) fn sdk(&self) -> Result<&Sdk, EdgeXError> {
        self.sdk
            .get()
            .ok_or_else(|| EdgeXError::new(ErrorKind::ServiceUnavailable, "device-rest is not initialized yet"))
    }
}

/// The device-rest protocol driver. Cheap to clone; clones share their state.
#[derive(Clone)]
pub struct RestDriver {
    inner: Arc<Inner>,
}

impl Default for RestDriver {
    fn default() -> Self {
        Self { inner: Arc::new(Inner { sdk: OnceLock::new(), settings: OnceLock::new(), client: OnceLock::new() }) }
    }
}

impl RestDriver {
    fn not_ready() -> DriverError {
        DriverError::Failed("device-rest is not initialized yet".to_owned())
    }

    /// The HTTP exchange settings for `device`.
    fn exchange<'a>(&'a self, device: &'a str) -> DriverResult<Exchange<'a>> {
        let client = self.inner.client.get().ok_or_else(Self::not_ready)?;
        let (settings, timeout) = self.inner.settings.get().ok_or_else(Self::not_ready)?;
        Ok(Exchange { client, device, timeout: *timeout, max_body: settings.max_response_size })
    }

    /// The endpoint of `device`; an error when it has none.
    fn endpoint(device: &str, protocols: &Protocols) -> DriverResult<Endpoint> {
        match Endpoint::of(protocols) {
            Ok(Some(endpoint)) => Ok(endpoint),
            Ok(None) => Err(DriverError::Invalid(format!(
                "device {device} has no {PROTOCOL} protocol properties (Host, Port, Path): it pushes its \
                 readings and cannot be commanded"
            ))),
            Err(why) => Err(DriverError::Invalid(format!("device {device}: {why}"))),
        }
    }

    /// The device resource `name` of `device`'s profile.
    fn resource(&self, device: &str, name: &str) -> DriverResult<DeviceResource> {
        let sdk = self.inner.sdk.get().ok_or_else(Self::not_ready)?;
        let dev = sdk.device(device).ok_or_else(|| DriverError::Invalid(format!("device {device} not found")))?;
        let profile = sdk.profile(&dev.profile_name).ok_or_else(|| {
            DriverError::Invalid(format!("profile {} of device {device} is not loaded", dev.profile_name))
        })?;
        profile.resource(name).cloned().ok_or_else(|| {
            DriverError::Invalid(format!("DeviceResource {name} not found in profile {}", dev.profile_name))
        })
    }
}

fn raw_query(request: &CommandRequest) -> &str {
    request.attributes.get(URL_RAW_QUERY).and_then(|q| q.as_str()).unwrap_or_default()
}

#[async_trait]
impl ProtocolDriver for RestDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let settings: Settings = sdk.driver_config().map_err(|e| DriverError::Invalid(format!("{e:#}")))?;
        let timeout = settings.request_timeout().map_err(DriverError::Invalid)?;
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| DriverError::Failed(format!("cannot create the HTTP client: {e}")))?;
        let _ = self.inner.client.set(client);
        let _ = self.inner.settings.set((settings, timeout));
        let _ = self.inner.sdk.set(sdk);
        Ok(())
    }

    /// GETs each resource from the device's endpoint, one after the other, as EdgeX does.
    async fn handle_read_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        let endpoint = Self::endpoint(device, protocols)?;
        let exchange = self.exchange(device)?;
        let mut values = Vec::with_capacity(requests.len());
        for request in requests {
            let resource = self.resource(device, &request.resource_name)?;
            let url = endpoint.url(&request.resource_name, raw_query(request));
            let what = format!("GET {url}");
            let (content_type, body) = exchange.send(exchange.client.get(url.clone()), &what).await?;
            let value = convert::from_body(&resource, &content_type, &body).map_err(|why| {
                DriverError::Failed(format!(
                    "device {device}: {what}: the answer is not a {} value of DeviceResource {}: {why}",
                    resource.properties.value_type, resource.name
                ))
            })?;
            values.push(CommandValue::new(request.resource_name.clone(), value));
        }
        Ok(values)
    }

    /// PUTs each value to the device's endpoint, one after the other, as EdgeX does.
    async fn handle_write_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()> {
        let endpoint = Self::endpoint(device, protocols)?;
        let exchange = self.exchange(device)?;
        for WriteCommand { request, value } in writes {
            let resource = self.resource(device, &request.resource_name)?;
            let url = endpoint.url(&request.resource_name, raw_query(request));
            let (content_type, body) = convert::to_body(&resource, &value.value);
            let put = exchange.client.put(url.clone()).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
            exchange.send(put, &format!("PUT {url}")).await?;
        }
        Ok(())
    }

    /// A device with `REST` protocol properties must have a usable `Host` and `Port`.
    async fn validate_device(&self, device: &Device) -> DriverResult<()> {
        Endpoint::of(&device.protocols)
            .map(|_| ())
            .map_err(|why| DriverError::Invalid(format!("device {}: invalid protocol properties: {why}", device.name)))
    }

    fn routes(&self, routes: &mut actix_web::web::ServiceConfig) {
        crate::ingest::configure(routes, self.inner.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_device_sdk::DeviceServiceConfig;
    use std::path::Path;

    #[test]
    fn the_sample_configuration_shows_the_defaults_and_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("res/configuration.yaml");
        let cfg = DeviceServiceConfig::load(Some(&file)).unwrap();
        assert_eq!(cfg.driver_config::<Settings>().unwrap(), Settings::default());
        assert_eq!(Settings::default().request_timeout(), Ok(Duration::from_secs(5)));
        assert_eq!(cfg.device.profiles_dir, Path::new("profiles/device-rest/profiles"));
    }

    #[test]
    fn bad_settings_name_the_key() {
        let mut cfg = DeviceServiceConfig::default();
        cfg.driver.insert("request_timeout".into(), "soon".into());
        let settings: Settings = cfg.driver_config().unwrap();
        assert!(settings.request_timeout().unwrap_err().contains("driver.request_timeout: 'soon'"));
        cfg.driver.insert("max_response_size".into(), "big".into());
        let err = cfg.driver_config::<Settings>().unwrap_err().to_string();
        assert!(err.contains("driver.max_response_size"), "{err}");
        cfg.driver.clear();
        cfg.driver.insert("request_timout".into(), "1s".into());
        assert!(cfg.driver_config::<Settings>().is_err(), "unknown keys are refused");
    }
}
