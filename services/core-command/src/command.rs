//! What core-command does, whoever asks (REST or the bus): list a device's commands from its
//! profile, and issue a command to the device service that owns the device — after checking,
//! before anything reaches the device, that the device and command exist, that neither the
//! device nor its service is locked or down, that the command may be read or written, and that
//! a write names only the command's resources.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use oxedge_bus::{topic, Bus, BusError, MessageEnvelope, Requester};
use oxedge_contracts::client::{CommandAnswer, DeviceServiceClient, MetadataClient};
use oxedge_contracts::{
    AdminState, CoreCommand, CoreCommandParameter, Device, DeviceCoreCommand, DeviceProfile, DeviceService, EdgeXError,
    ErrorKind, OperatingState, ReadWrite,
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::cache::MetadataCache;
use crate::config::{CommandConfig, Transport};

/// The name core-command runs under (bus responses, logs, `/ping`).
pub const SERVICE_NAME: &str = "core-command";

/// `ds-pushevent`: the device service also publishes the event it reads.
pub const PUSH_EVENT: &str = "ds-pushevent";
/// `ds-returnevent`: the device service returns the event it reads (default true).
pub const RETURN_EVENT: &str = "ds-returnevent";

/// Read (`GET`, bus `get`) or write (`PUT`, bus `set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read the command's resources.
    Get,
    /// Write the command's resources.
    Set,
}

impl Method {
    /// `get` or `set`, as in bus topics.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Set => "set",
        }
    }

    /// The method a bus topic level names (`get`/`set`, any case).
    pub fn parse(level: &str) -> Option<Self> {
        if level.eq_ignore_ascii_case("get") {
            Some(Method::Get)
        } else if level.eq_ignore_ascii_case("set") {
            Some(Method::Set)
        } else {
            None
        }
    }
}

/// One command to issue.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// The device.
    pub device: String,
    /// The command or resource of the device's profile.
    pub command: String,
    /// Read or write.
    pub method: Method,
    /// The query parameters, in order, passed on to the device service.
    pub query: Vec<(String, String)>,
    /// The query string as the caller wrote it, passed on as it is over REST (empty: built
    /// from `query`).
    pub raw_query: String,
    /// Ties the logs of this command together across services.
    pub correlation_id: String,
    /// The bus request id to use (empty: a fresh one).
    pub request_id: String,
    /// For a write: resource name → value.
    pub settings: Map<String, Value>,
}

impl CommandRequest {
    /// The query parameters as a map (the last value of a repeated name wins), as the bus carries them.
    pub fn query_map(&self) -> BTreeMap<String, String> {
        self.query.iter().cloned().collect()
    }

    /// The query string: the caller's own, else `query` encoded.
    pub fn query_string(&self) -> String {
        if self.raw_query.is_empty() {
            serde_urlencoded::to_string(&self.query).unwrap_or_default()
        } else {
            self.raw_query.clone()
        }
    }
}

/// What the device service answered.
#[derive(Debug)]
pub enum Outcome {
    /// Its HTTP answer, as it came.
    Http(CommandAnswer),
    /// Its response envelope on the bus.
    Bus {
        /// The device service.
        service: String,
        /// The response; `errorCode` 1 carries the device service's error text.
        reply: MessageEnvelope,
    },
}

/// core-command's state: its clients of core-metadata, device services and the bus. Cheap to clone.
#[derive(Clone)]
pub struct Commands {
    inner: Arc<Inner>,
}

struct Inner {
    metadata: MetadataClient,
    /// Devices, profiles and services from core-metadata, when they are cached.
    cache: Option<Arc<MetadataCache>>,
    device_services: DeviceServiceClient,
    bus: Option<Arc<dyn Bus>>,
    /// One requester per device service: each answers on `edgex/response/{service}/…`.
    requesters: Mutex<HashMap<String, Arc<Requester>>>,
    transport: Transport,
    timeout: Duration,
    public_url: String,
}

impl Commands {
    /// core-command as `cfg` configures it, announcing `public_url` in command listings.
    pub fn new(cfg: &CommandConfig, bus: Option<Arc<dyn Bus>>, public_url: String) -> anyhow::Result<Self> {
        if cfg.command.transport == Transport::Bus && bus.is_none() {
            anyhow::bail!("command.transport is 'bus' but core-command was started without a message bus");
        }
        let md = &cfg.clients.core_metadata;
        let metadata = MetadataClient::new(&md.url, md.timeout())
            .map_err(|e| anyhow::anyhow!("clients.core_metadata.url: {e}"))?;
        let device_services = DeviceServiceClient::new(cfg.command.timeout())
            .map_err(|e| anyhow::anyhow!("device service client: {e}"))?;
        let ttl = cfg.command.cache_ttl();
        let cache = bus.clone().filter(|_| !ttl.is_zero()).map(|bus| Arc::new(MetadataCache::new(bus, ttl)));
        Ok(Self {
            inner: Arc::new(Inner {
                metadata,
                cache,
                device_services,
                bus,
                requesters: Mutex::default(),
                transport: cfg.command.transport,
                timeout: cfg.command.timeout(),
                public_url: public_url.trim_end_matches('/').to_owned(),
            }),
        })
    }

    /// The client of core-metadata.
    pub fn metadata(&self) -> &MetadataClient {
        &self.inner.metadata
    }

    /// The metadata cache, when one is configured (it needs following; see [`MetadataCache::follow`]).
    pub fn cache(&self) -> Option<&Arc<MetadataCache>> {
        self.inner.cache.as_ref()
    }

    async fn device(&self, name: &str) -> Result<Arc<Device>, EdgeXError> {
        let fetch = self.inner.metadata.device(name);
        match &self.inner.cache {
            Some(cache) => cache.device(name, fetch).await,
            None => fetch.await.map(Arc::new),
        }
    }

    async fn service(&self, device: &Device) -> Result<Arc<DeviceService>, EdgeXError> {
        let name = &device.service_name;
        let fetch = self.inner.metadata.device_service(name);
        let found = match &self.inner.cache {
            Some(cache) => cache.service(name, fetch).await,
            None => fetch.await.map(Arc::new),
        };
        found.map_err(|e| context(e, &format!("device service '{name}' of device '{}'", device.name)))
    }

    /// The commands of the device `name`.
    pub async fn device_commands(&self, name: &str) -> Result<DeviceCoreCommand, EdgeXError> {
        let device = self.device(name).await?;
        let profile = self.profile_of(&device).await?;
        Ok(self.describe(&device, &profile))
    }

    /// A page of devices' commands (those with any of `labels`, when given), and how many
    /// devices match in all.
    pub async fn all_commands(
        &self,
        offset: u64,
        limit: u64,
        labels: &[String],
    ) -> Result<(u64, Vec<DeviceCoreCommand>), EdgeXError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (total, devices) = self.inner.metadata.devices(offset, limit, labels).await?;
        let mut profiles: HashMap<String, Arc<DeviceProfile>> = HashMap::new();
        let mut out = Vec::with_capacity(devices.len());
        for device in &devices {
            if !profiles.contains_key(&device.profile_name) {
                profiles.insert(device.profile_name.clone(), self.profile_of(device).await?);
            }
            out.push(self.describe(device, &profiles[&device.profile_name]));
        }
        Ok((total, out))
    }

    async fn profile_of(&self, device: &Device) -> Result<Arc<DeviceProfile>, EdgeXError> {
        let name = &device.profile_name;
        let fetch = self.inner.metadata.device_profile(name);
        let found = match &self.inner.cache {
            Some(cache) => cache.profile(name, fetch).await,
            None => fetch.await.map(Arc::new),
        };
        found.map_err(|e| context(e, &format!("profile '{name}' of device '{}'", device.name)))
    }

    fn describe(&self, device: &Device, profile: &DeviceProfile) -> DeviceCoreCommand {
        DeviceCoreCommand {
            device_name: device.name.clone(),
            profile_name: device.profile_name.clone(),
            core_commands: core_commands(&device.name, profile, &self.inner.public_url),
        }
    }

    /// Checks `req` and sends it to the device service that owns the device, over the
    /// configured transport; returns what the device service answered.
    pub async fn issue(&self, req: &CommandRequest) -> Result<Outcome, EdgeXError> {
        check_flags(&req.query)?;
        let device = self.device(&req.device).await?;
        let (service, profile) = tokio::join!(self.service(&device), self.profile_of(&device));
        let service = service?;
        check(&device, &service, &*profile?, req)?;
        match self.inner.transport {
            Transport::Rest => self.over_rest(&service, req).await,
            Transport::Bus => self.over_bus(&service.name, req).await,
        }
    }

    async fn over_rest(&self, service: &DeviceService, req: &CommandRequest) -> Result<Outcome, EdgeXError> {
        let client = &self.inner.device_services;
        let (address, query) = (service.base_address.as_str(), req.query_string());
        let answer = match req.method {
            Method::Get => client.get_command(address, &req.device, &req.command, &query, &req.correlation_id).await,
            Method::Set => {
                client.set_command(address, &req.device, &req.command, &query, &req.correlation_id, &req.settings).await
            }
        };
        answer.map(Outcome::Http).map_err(|e| match e.kind {
            ErrorKind::Timeout => self.too_slow(&service.name, req),
            ErrorKind::ContractInvalid => EdgeXError::new(
                ErrorKind::ServiceUnavailable,
                format!("device service '{}' has an unusable baseAddress: {}", service.name, e.message),
            ),
            _ => context(e, &format!("device service '{}'", service.name)),
        })
    }

    async fn over_bus(&self, service: &str, req: &CommandRequest) -> Result<Outcome, EdgeXError> {
        let unavailable = |why: String| EdgeXError::new(ErrorKind::ServiceUnavailable, why);
        let bus = self.inner.bus.as_ref().ok_or_else(|| unavailable("no message bus is configured".to_owned()))?;
        if !bus.is_connected() {
            return Err(unavailable(format!("the message bus ({}) is not connected", bus.describe())));
        }
        // Subscribing and publishing wait for the broker: the whole exchange gets the timeout.
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let requester = tokio::time::timeout_at(deadline, self.requester(bus, service)).await.map_err(|_| {
            unavailable(format!("the message bus ({}) did not take a subscription in time", bus.describe()))
        })??;
        let payload = match req.method {
            Method::Get => Value::Null,
            Method::Set => Value::Object(req.settings.clone()),
        };
        let correlation = Some(req.correlation_id.as_str()).filter(|c| !c.is_empty());
        let request = MessageEnvelope::json(&payload, correlation)
            .map_err(|e| EdgeXError::server(format!("command request: {e}")))?
            .with_request_id(req.request_id.clone())
            .with_query_params(req.query_map());
        let topic = topic::command_request(service, &req.device, &req.command, req.method.as_str());
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout_at(deadline, requester.request(&topic, request, left)).await {
            Ok(Ok(reply)) => Ok(Outcome::Bus { service: service.to_owned(), reply }),
            Ok(Err(BusError::Timeout(_))) | Err(_) => Err(self.too_slow(service, req)),
            Ok(Err(e)) => {
                Err(unavailable(format!("device service '{service}' cannot be reached on the message bus: {e}")))
            }
        }
    }

    /// The requester that receives `service`'s responses, subscribed on first use.
    async fn requester(&self, bus: &Arc<dyn Bus>, service: &str) -> Result<Arc<Requester>, EdgeXError> {
        let mut requesters = self.inner.requesters.lock().await;
        if let Some(r) = requesters.get(service) {
            return Ok(r.clone());
        }
        let r = Requester::new(bus.clone(), service).await.map_err(|e| {
            EdgeXError::new(
                ErrorKind::ServiceUnavailable,
                format!("cannot subscribe to the responses of '{service}': {e}"),
            )
        })?;
        let r = Arc::new(r);
        requesters.insert(service.to_owned(), r.clone());
        Ok(r)
    }

    fn too_slow(&self, service: &str, req: &CommandRequest) -> EdgeXError {
        EdgeXError::new(
            ErrorKind::Timeout,
            format!(
                "device service '{service}' did not answer {} '{}' of device '{}' within {:?}",
                req.method.as_str(),
                req.command,
                req.device,
                self.inner.timeout
            ),
        )
    }
}

/// Prefixes an error's message with what was being fetched, keeping its kind.
fn context(e: EdgeXError, what: &str) -> EdgeXError {
    EdgeXError::new(e.kind, format!("{what}: {}", e.message))
}

/// The commands a profile offers a device, as EdgeX lists them: its device commands, then
/// each resource no command shadows; hidden ones left out.
pub fn core_commands(device: &str, profile: &DeviceProfile, url: &str) -> Vec<CoreCommand> {
    let build = |name: &str, rw: ReadWrite, parameters: Vec<CoreCommandParameter>| CoreCommand {
        name: name.to_owned(),
        get: rw.readable(),
        set: rw.writable(),
        path: format!("/api/v3/device/name/{}/{}", topic::encode(device), topic::encode(name)),
        url: url.to_owned(),
        parameters,
    };
    let mut out: Vec<CoreCommand> = profile
        .device_commands
        .iter()
        .filter(|c| !c.is_hidden)
        .map(|c| {
            let parameters = c
                .resource_operations
                .iter()
                .filter_map(|ro| profile.resource(&ro.device_resource))
                .map(|r| CoreCommandParameter { resource_name: r.name.clone(), value_type: r.properties.value_type })
                .collect();
            build(&c.name, c.read_write, parameters)
        })
        .collect();
    for r in profile.device_resources.iter().filter(|r| !r.is_hidden) {
        if profile.command(&r.name).is_none() {
            let parameter = CoreCommandParameter { resource_name: r.name.clone(), value_type: r.properties.value_type };
            out.push(build(&r.name, r.properties.read_write, vec![parameter]));
        }
    }
    out
}

/// `ds-pushevent` and `ds-returnevent` must be `true` or `false`, as EdgeX requires.
pub fn check_flags(query: &[(String, String)]) -> Result<(), EdgeXError> {
    for (name, value) in query {
        if (name == PUSH_EVENT || name == RETURN_EVENT) && value != "true" && value != "false" {
            return Err(EdgeXError::invalid(format!("query parameter {name}: '{value}' is not true or false")));
        }
    }
    Ok(())
}

/// Everything checked before a command leaves core-command, with EdgeX's status codes: 423
/// for a locked service or device or a device that is down, 404 for a command the profile
/// does not have, 405 for a read of a write-only command or a write of a read-only one, 400
/// for a write naming resources the command does not have, a null value, or leaving out a
/// resource that has no default value.
pub fn check(
    device: &Device,
    service: &DeviceService,
    profile: &DeviceProfile,
    req: &CommandRequest,
) -> Result<(), EdgeXError> {
    let locked = |what: String| EdgeXError::new(ErrorKind::ServiceLocked, what);
    if service.admin_state == AdminState::Locked {
        return Err(locked(format!("device service '{}' of device '{}' is locked", service.name, device.name)));
    }
    if device.admin_state == AdminState::Locked {
        return Err(locked(format!("device '{}' is locked", device.name)));
    }
    if device.operating_state == OperatingState::Down {
        return Err(locked(format!("device '{}' is down (operatingState DOWN)", device.name)));
    }
    // The command's permission and resources: (name, has a default value).
    let (read_write, resources): (ReadWrite, Vec<(&str, bool)>) = match profile.command(&req.command) {
        Some(c) => {
            let resources = c
                .resource_operations
                .iter()
                .map(|ro| {
                    let default =
                        profile.resource(&ro.device_resource).is_some_and(|r| !r.properties.default_value.is_empty());
                    (ro.device_resource.as_str(), default || !ro.default_value.is_empty())
                })
                .collect();
            (c.read_write, resources)
        }
        None => match profile.resource(&req.command) {
            Some(r) => (r.properties.read_write, vec![(r.name.as_str(), !r.properties.default_value.is_empty())]),
            None => {
                return Err(EdgeXError::new(
                    ErrorKind::EntityDoesNotExist,
                    format!(
                        "command '{}' does not exist for device '{}' (profile '{}')",
                        req.command,
                        device.name,
                        profile.name()
                    ),
                ))
            }
        },
    };
    let not_allowed = |what: &str| {
        EdgeXError::new(
            ErrorKind::MethodNotAllowed,
            format!("command '{}' of device '{}' is {what}", req.command, device.name),
        )
    };
    match req.method {
        Method::Get if !read_write.readable() => return Err(not_allowed("write-only")),
        Method::Set if !read_write.writable() => return Err(not_allowed("read-only")),
        Method::Get => return Ok(()),
        Method::Set => {}
    }
    let unknown: Vec<&str> =
        req.settings.keys().map(String::as_str).filter(|k| !resources.iter().any(|(r, _)| r == k)).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = resources.iter().map(|(r, _)| *r).collect();
        return Err(EdgeXError::invalid(format!(
            "body: command '{}' has no resource {} (its resources: {})",
            req.command,
            quoted(&unknown),
            quoted(&known)
        )));
    }
    let nulls: Vec<&str> = req.settings.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k.as_str()).collect();
    if !nulls.is_empty() {
        return Err(EdgeXError::invalid(format!("body: resource {} has a null value", quoted(&nulls))));
    }
    let missing: Vec<&str> =
        resources.iter().filter(|(r, default)| !default && !req.settings.contains_key(*r)).map(|(r, _)| *r).collect();
    if !missing.is_empty() {
        return Err(EdgeXError::invalid(format!(
            "body: resource {} of command '{}' is missing and has no default value",
            quoted(&missing),
            req.command
        )));
    }
    Ok(())
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile() -> DeviceProfile {
        oxedge_contracts::from_json(
            json!({
                "name": "P",
                "deviceResources": [
                    {"name": "Temp", "properties": {"valueType": "Float32", "readWrite": "R"}},
                    {"name": "Set Point", "properties": {"valueType": "Int16", "readWrite": "RW"}},
                    {"name": "Mode", "properties": {"valueType": "String", "readWrite": "RW", "defaultValue": "auto"}},
                    {"name": "Reset", "properties": {"valueType": "Bool", "readWrite": "W"}},
                    {"name": "Secret", "isHidden": true, "properties": {"valueType": "Bool", "readWrite": "R"}}
                ],
                "deviceCommands": [
                    {"name": "Config", "readWrite": "RW", "resourceOperations": [
                        {"deviceResource": "Set Point"}, {"deviceResource": "Mode"}]},
                    {"name": "Temp", "readWrite": "R", "resourceOperations": [{"deviceResource": "Temp"}]}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn device(admin: &str, op: &str) -> Device {
        oxedge_contracts::from_json(
            json!({"name": "d 1", "adminState": admin, "operatingState": op, "serviceName": "ds",
                   "profileName": "P", "protocols": {"x": {}}})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn service(admin: &str) -> DeviceService {
        oxedge_contracts::from_json(
            json!({"name": "ds", "adminState": admin, "baseAddress": "http://127.0.0.1:1"}).to_string().as_bytes(),
        )
        .unwrap()
    }

    fn req(command: &str, method: Method, settings: Value) -> CommandRequest {
        CommandRequest {
            device: "d 1".into(),
            command: command.into(),
            method,
            query: vec![],
            raw_query: String::new(),
            correlation_id: String::new(),
            request_id: String::new(),
            settings: settings.as_object().cloned().unwrap_or_default(),
        }
    }

    fn status(r: &CommandRequest) -> u16 {
        check(&device("UNLOCKED", "UP"), &service("UNLOCKED"), &profile(), r).map_or_else(|e| e.status_code(), |()| 200)
    }

    #[test]
    fn listing_follows_edgex() {
        let cmds = core_commands("d 1", &profile(), "http://h:59882");
        let names: Vec<&str> = cmds.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Config", "Temp", "Set Point", "Mode", "Reset"]);
        assert_eq!(cmds[0].path, "/api/v3/device/name/d%201/Config");
        assert!(cmds[0].get && cmds[0].set && cmds[1].get && !cmds[1].set && !cmds[4].get && cmds[4].set);
        assert_eq!(cmds[0].parameters.len(), 2);
        assert_eq!(cmds[0].url, "http://h:59882");
    }

    #[test]
    fn permissions_and_bodies_are_checked_before_sending() {
        assert_eq!(status(&req("Temp", Method::Get, json!({}))), 200);
        assert_eq!(status(&req("Nope", Method::Get, json!({}))), 404);
        assert_eq!(status(&req("Temp", Method::Set, json!({"Temp": "1"}))), 405);
        assert_eq!(status(&req("Reset", Method::Get, json!({}))), 405);
        assert_eq!(status(&req("Config", Method::Set, json!({"Set Point": "5"}))), 200);
        assert_eq!(status(&req("Config", Method::Set, json!({"Mode": "x"}))), 400);
        assert_eq!(status(&req("Config", Method::Set, json!({"Set Point": null}))), 400);
        let unknown = check(
            &device("UNLOCKED", "UP"),
            &service("UNLOCKED"),
            &profile(),
            &req("Config", Method::Set, json!({"Set Point": 1, "Bogus": 2, "Temp": 3})),
        )
        .unwrap_err();
        assert!(unknown.message.contains("'Bogus', 'Temp'"), "{}", unknown.message);
    }

    #[test]
    fn locked_or_down_is_423() {
        let r = req("Temp", Method::Get, json!({}));
        for (d, s) in [(device("LOCKED", "UP"), service("UNLOCKED")), (device("UNLOCKED", "DOWN"), service("UNLOCKED"))]
            .into_iter()
            .chain([(device("UNLOCKED", "UP"), service("LOCKED"))])
        {
            assert_eq!(check(&d, &s, &profile(), &r).unwrap_err().status_code(), 423);
        }
    }

    #[test]
    fn flags_must_be_true_or_false() {
        let q = |v: &str| vec![(RETURN_EVENT.to_owned(), v.to_owned()), ("other".to_owned(), "x".to_owned())];
        assert!(check_flags(&q("false")).is_ok());
        assert!(check_flags(&q("no")).unwrap_err().message.contains(RETURN_EVENT));
    }
}
