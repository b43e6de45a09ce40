//! Executing a command (a device command or a device resource) on a device: reads become
//! events, writes are checked against the profile before they reach the driver.
//!
//! As EdgeX's device-sdk-go does: `{command}` names a device command of the device's
//! profile or, failing that, a device resource. A device that does not exist is 404; a
//! LOCKED device, or a DOWN one (see [`crate::health`]), is 423; a GET of something
//! write-only or a SET of something read-only is 405. Query parameters not starting with
//! `ds-` reach the driver as the `urlRawQuery` attribute of every request. `isHidden` only
//! hides a resource from core-command's listing: the device service serves it as any other.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use oxedge_bus::{topic, MessageEnvelope};
use oxedge_contracts::{
    AdminState, Device, DeviceCommand, DeviceProfile, DeviceResource, EdgeXError, ErrorKind, Event, ReadWrite, Reading,
    ResourceOperation, ValueType, API_VERSION,
};
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::driver::{CommandRequest, CommandValue, DriverError, WriteCommand};
use crate::service::Service;
use crate::value;

/// `ds-pushevent=true`: publish the event read on the bus.
pub(crate) const PUSH_EVENT: &str = "ds-pushevent";
/// `ds-returnevent=false`: do not return the event read.
pub(crate) const RETURN_EVENT: &str = "ds-returnevent";
/// Query parameters with this prefix are the SDK's; the others go to the driver.
const RESERVED_PREFIX: &str = "ds-";
/// The attribute under which a driver finds the call's other query parameters.
pub(crate) const URL_RAW_QUERY: &str = "urlRawQuery";

/// Reads `command` of `device`; publishes the event when `ds-pushevent=true` and returns
/// it unless `ds-returnevent=false`.
pub(crate) async fn get(
    svc: &Service,
    device: &str,
    command: &str,
    query: &BTreeMap<String, String>,
) -> Result<Option<Event>, EdgeXError> {
    let options = Options::parse(query)?;
    let started = Instant::now();
    let event = read(svc, device, command, &options.raw_query).await;
    svc.metrics.command("GET", started.elapsed());
    let event = event?;
    if options.push {
        publish_logged(svc, &event).await;
    }
    Ok(options.return_event.then_some(event))
}

/// Writes the values of `body` (resource → value) through `command` of `device`. As EdgeX
/// 4 does, the values written are then published as an event unless the command is
/// write-only.
pub(crate) async fn set(
    svc: &Service,
    device: &str,
    command: &str,
    body: &serde_json::Map<String, Json>,
    query: &BTreeMap<String, String>,
) -> Result<(), EdgeXError> {
    let options = Options::parse(query)?;
    let started = Instant::now();
    let event = write(svc, device, command, body, &options.raw_query).await;
    svc.metrics.command("SET", started.elapsed());
    if let Some(event) = event? {
        publish_logged(svc, &event).await;
    }
    Ok(())
}

/// Publishes values a driver read on its own (asynchronous readings) as one event of `source`.
pub(crate) async fn push_values(
    svc: &Service,
    device: &str,
    source: &str,
    values: Vec<CommandValue>,
) -> Result<(), EdgeXError> {
    if source.is_empty() {
        return Err(EdgeXError::invalid("source: the name of the command or resource read must not be empty"));
    }
    if values.is_empty() {
        return Err(EdgeXError::invalid(format!("values: no value to publish for device {device}")));
    }
    let device = svc.cache.device(device).ok_or_else(|| device_not_found(device))?;
    let profile = profile_of(svc, &device)?;
    let command = profile.command(source);
    let event = build_event(svc, &device, &profile, source, command, values)?;
    publish(svc, &event).await
}

/// What the SDK's query parameters ask for.
#[derive(Debug)]
struct Options {
    push: bool,
    return_event: bool,
    /// The other parameters, encoded as Go's `url.Values.Encode` does (sorted by key).
    raw_query: String,
}

impl Options {
    fn parse(query: &BTreeMap<String, String>) -> Result<Self, EdgeXError> {
        let reserved: HashMap<String, String> =
            query.iter().filter(|(k, _)| k.starts_with(RESERVED_PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let push = oxedge_runtime::reply::flag(&reserved, PUSH_EVENT)?;
        let return_event = match reserved.get(RETURN_EVENT).map(String::as_str) {
            None | Some("") => true,
            Some(_) => oxedge_runtime::reply::flag(&reserved, RETURN_EVENT)?,
        };
        let mut raw = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(k, _)| !k.starts_with(RESERVED_PREFIX)) {
            raw.append_pair(k, v);
        }
        Ok(Self { push, return_event, raw_query: raw.finish() })
    }
}

/// A device that accepts commands now, and its profile.
pub(crate) struct Target {
    pub device: Arc<Device>,
    pub profile: Arc<DeviceProfile>,
}

fn device_not_found(name: &str) -> EdgeXError {
    EdgeXError::new(ErrorKind::EntityDoesNotExist, format!("device {name} not found"))
}

fn profile_of(svc: &Service, device: &Device) -> Result<Arc<DeviceProfile>, EdgeXError> {
    if device.profile_name.is_empty() {
        return Err(EdgeXError::new(ErrorKind::ServiceLocked, "no associated device profile"));
    }
    svc.cache.profile(&device.profile_name).ok_or_else(|| {
        EdgeXError::new(
            ErrorKind::ServiceLocked,
            format!("device profile {} of device {} is not loaded", device.profile_name, device.name),
        )
    })
}

/// The device named `name` with its profile, if it exists and takes commands (EdgeX's
/// `validateServiceAndDeviceState`).
pub(crate) fn target(svc: &Service, name: &str) -> Result<Target, EdgeXError> {
    if svc.is_locked() {
        return Err(EdgeXError::new(ErrorKind::ServiceLocked, "service locked"));
    }
    let device = svc.cache.device(name).ok_or_else(|| device_not_found(name))?;
    if device.admin_state == AdminState::Locked {
        return Err(EdgeXError::new(ErrorKind::ServiceLocked, format!("device {name} locked")));
    }
    if !svc.health.admits(svc, &device) {
        return Err(EdgeXError::new(ErrorKind::ServiceLocked, format!("device {name} OperatingState is DOWN")));
    }
    let profile = profile_of(svc, &device)?;
    Ok(Target { device, profile })
}

/// What `{command}` names in a profile.
enum Source<'a> {
    Command(&'a DeviceCommand),
    Resource(&'a DeviceResource),
}

impl<'a> Source<'a> {
    fn resolve(target: &'a Target, name: &str) -> Result<Self, EdgeXError> {
        if let Some(c) = target.profile.command(name) {
            return Ok(Source::Command(c));
        }
        target.profile.resource(name).map(Source::Resource).ok_or_else(|| {
            EdgeXError::new(
                ErrorKind::EntityDoesNotExist,
                format!(
                    "DeviceCommand or DeviceResource {name} not found in profile {} of device {}",
                    target.profile.name(),
                    target.device.name
                ),
            )
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Source::Command(_) => "DeviceCommand",
            Source::Resource(_) => "DeviceResource",
        }
    }

    fn name(&self) -> &str {
        match self {
            Source::Command(c) => &c.name,
            Source::Resource(r) => &r.name,
        }
    }

    fn read_write(&self) -> ReadWrite {
        match self {
            Source::Command(c) => c.read_write,
            Source::Resource(r) => r.properties.read_write,
        }
    }

    /// The resources the source reads or writes, with their resource operation.
    fn resources(
        &self,
        target: &'a Target,
    ) -> Result<Vec<(&'a DeviceResource, Option<&'a ResourceOperation>)>, EdgeXError> {
        match self {
            Source::Resource(r) => Ok(vec![(*r, None)]),
            Source::Command(c) => c
                .resource_operations
                .iter()
                .map(|op| {
                    target.profile.resource(&op.device_resource).map(|r| (r, Some(op))).ok_or_else(|| {
                        EdgeXError::server(format!(
                            "DeviceResource {} in command {} of profile {} not defined",
                            op.device_resource,
                            c.name,
                            target.profile.name()
                        ))
                    })
                })
                .collect(),
        }
    }
}

/// The driver requests of one read, worked out once and reused (auto events).
pub(crate) struct ReadPlan {
    /// The command or resource read.
    pub source: String,
    requests: Vec<CommandRequest>,
}

fn request(resource: &DeviceResource, raw_query: &str) -> CommandRequest {
    let mut attributes = resource.attributes.clone();
    if !raw_query.is_empty() {
        attributes.insert(URL_RAW_QUERY.to_owned(), Json::String(raw_query.to_owned()));
    }
    CommandRequest { resource_name: resource.name.clone(), attributes, value_type: resource.properties.value_type }
}

/// Works out the driver requests to read `source` (a command or resource) of `target`.
pub(crate) fn plan_read(target: &Target, source: &str, raw_query: &str) -> Result<ReadPlan, EdgeXError> {
    let src = Source::resolve(target, source)?;
    if !src.read_write().readable() {
        return Err(EdgeXError::new(
            ErrorKind::MethodNotAllowed,
            format!("{} {} is marked as write-only", src.kind(), src.name()),
        ));
    }
    let requests = src.resources(target)?.into_iter().map(|(r, _)| request(r, raw_query)).collect();
    Ok(ReadPlan { source: src.name().to_owned(), requests })
}

/// Reads `command` of `device` and returns the event, publishing nothing.
pub(crate) async fn read(svc: &Service, device: &str, command: &str, raw_query: &str) -> Result<Event, EdgeXError> {
    let target = target(svc, device)?;
    let plan = plan_read(&target, command, raw_query)?;
    execute_read(svc, &target, &plan).await
}

/// Runs `plan` through the driver (within `device.command_timeout`) and turns the values
/// into an event.
pub(crate) async fn execute_read(svc: &Service, target: &Target, plan: &ReadPlan) -> Result<Event, EdgeXError> {
    let device = &target.device;
    let call = svc.driver.handle_read_commands(&device.name, &device.protocols, &plan.requests);
    let values = driver_call(svc, &device.name, call).await.map_err(|e| {
        driver_error(e, format!("error reading {} for {}", describe_source(&target.profile, &plan.source), device.name))
    })?;
    if values.is_empty() {
        return Err(EdgeXError::server(format!(
            "the driver returned no value reading {} of {}",
            plan.source, device.name
        )));
    }
    let event = build_event(svc, device, &target.profile, &plan.source, target.profile.command(&plan.source), values);
    if let Err(e) = &event {
        if value::is_assertion_failure(e) {
            svc.health.assertion_failed(svc, &device.name).await;
        }
    }
    event
}

fn describe_source(profile: &DeviceProfile, source: &str) -> String {
    if profile.command(source).is_some() {
        format!("DeviceCommand {source}")
    } else {
        format!("DeviceResource {source}")
    }
}

/// Awaits a driver call within the command timeout and records its outcome.
async fn driver_call<T>(
    svc: &Service,
    device: &str,
    call: impl std::future::Future<Output = Result<T, DriverError>>,
) -> Result<T, DriverError> {
    let timeout = svc.config.device.command_timeout();
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(DriverError::Timeout(format!("no answer from the driver within {timeout:?}"))),
    };
    svc.health.record(svc, device, result.as_ref().map(|_| ())).await;
    result
}

/// The answer to a failed driver call: 400 for an invalid request, 504 for a timeout, 500
/// otherwise.
fn driver_error(e: DriverError, context: String) -> EdgeXError {
    match e {
        DriverError::Invalid(m) => EdgeXError::invalid(format!("{context}: {m}")),
        DriverError::Timeout(m) => EdgeXError::new(ErrorKind::Timeout, format!("{context}: {m}")),
        DriverError::Failed(m) | DriverError::Refused(m) => EdgeXError::server(format!("{context}: {m}")),
    }
}

/// Writes `body` through `command` of `device`; returns the event of the values written
/// unless the command is write-only.
async fn write(
    svc: &Service,
    device: &str,
    command: &str,
    body: &Map<String, Json>,
    raw_query: &str,
) -> Result<Option<Event>, EdgeXError> {
    let target = target(svc, device)?;
    let src = Source::resolve(&target, command)?;
    if !src.read_write().writable() {
        return Err(EdgeXError::new(
            ErrorKind::MethodNotAllowed,
            format!("{} {} is marked as read-only", src.kind(), src.name()),
        ));
    }
    let resources = src.resources(&target)?;
    let unknown: Vec<&str> =
        body.keys().filter(|k| !resources.iter().any(|(r, _)| &r.name == *k)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(EdgeXError::invalid(format!(
            "{} {} does not write {}",
            src.kind(),
            src.name(),
            unknown.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut writes = Vec::with_capacity(resources.len());
    for (resource, op) in &resources {
        let given = match body.get(&resource.name) {
            Some(v) => v.clone(),
            None => match op.map(|o| o.default_value.as_str()).filter(|d| !d.is_empty()) {
                Some(d) => Json::String(d.to_owned()),
                None if !resource.properties.default_value.is_empty() => {
                    Json::String(resource.properties.default_value.clone())
                }
                None => {
                    return Err(EdgeXError::invalid(format!(
                        "DeviceResource {} not found in request body and no default value defined",
                        resource.name
                    )))
                }
            },
        };
        let given = match op {
            Some(op) => unmap(op, given),
            None => given,
        };
        let cv = value::parse_write(resource, &given)?;
        writes.push(WriteCommand::new(request(resource, raw_query), cv));
    }
    let d = &target.device;
    let call = svc.driver.handle_write_commands(&d.name, &d.protocols, &writes);
    driver_call(svc, &d.name, call)
        .await
        .map_err(|e| driver_error(e, format!("error writing {} {} for {}", src.kind(), src.name(), d.name)))?;
    if src.read_write() == ReadWrite::W {
        return Ok(None);
    }
    let command = match src {
        Source::Command(c) => Some(c),
        Source::Resource(_) => None,
    };
    build_event(svc, d, &target.profile, src.name(), command, writes.into_iter().map(|w| w.value).collect()).map(Some)
}

/// The text EdgeX compares mappings against (Go's `fmt.Sprint` of the JSON value).
fn text_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A SET maps back: the value given is looked for among the mapping's values, and the key
/// it belongs to is written (EdgeX's SET mapping).
fn unmap(op: &ResourceOperation, given: Json) -> Json {
    if op.mappings.is_empty() {
        return given;
    }
    let text = text_of(&given);
    op.mappings.iter().find(|(_, v)| **v == text).map_or(given, |(k, _)| Json::String(k.clone()))
}

/// The resource operation whose mappings apply to readings of `resource`: that of `command`
/// if given, else the first command's that names the resource (as EdgeX looks it up).
fn mapping_of<'a>(
    profile: &'a DeviceProfile,
    command: Option<&'a DeviceCommand>,
    resource: &str,
) -> Option<&'a ResourceOperation> {
    let ops = |c: &'a DeviceCommand| c.resource_operations.iter().find(|op| op.device_resource == resource);
    match command {
        Some(c) => ops(c),
        None => profile.device_commands.iter().find_map(ops),
    }
    .filter(|op| !op.mappings.is_empty())
}

/// A nanosecond timestamp that never repeats within the process (EdgeX's `getUniqueOrigin`).
fn unique_origin() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The event of `values` read from `source` of `device`: one reading per value, converted
/// per the profile (the resource's tags on each reading), GET mappings applied; the
/// device's tags and the command's on the event.
fn build_event(
    svc: &Service,
    device: &Device,
    profile: &DeviceProfile,
    source: &str,
    command: Option<&DeviceCommand>,
    values: Vec<CommandValue>,
) -> Result<Event, EdgeXError> {
    let origin = unique_origin();
    let mut readings = Vec::with_capacity(values.len());
    for mut cv in values {
        let resource = profile.resource(&cv.resource_name).ok_or_else(|| {
            EdgeXError::server(format!(
                "the driver returned a value for {}, which is not a resource of profile {} (device {})",
                cv.resource_name,
                profile.name(),
                device.name
            ))
        })?;
        if cv.origin == 0 {
            cv.origin = origin;
        }
        let mut reading = value::to_reading(&device.name, profile.name(), resource, cv)?;
        if let Some(op) = mapping_of(profile, command, &resource.name) {
            apply_mapping(&mut reading, op);
        }
        readings.push(reading);
    }
    svc.metrics.readings(readings.len());
    let mut tags = device.tags.clone();
    if let Some(c) = command {
        tags.extend(c.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Ok(Event {
        api_version: API_VERSION.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        device_name: device.name.clone(),
        profile_name: profile.name().to_owned(),
        source_name: source.to_owned(),
        origin,
        readings,
        tags,
    })
}

/// A GET maps the value read to its mapped text (EdgeX's GET mapping: the reading becomes a
/// String reading).
fn apply_mapping(reading: &mut Reading, op: &ResourceOperation) {
    if let Some(mapped) = reading.value.as_ref().and_then(|v| op.mappings.get(v)) {
        reading.value = Some(mapped.clone());
        reading.value_type = ValueType::String;
    }
}

/// What travels on the bus for an event (`AddEventRequest`), without copying the event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventPayload<'a> {
    api_version: &'static str,
    request_id: String,
    event: &'a Event,
}

/// Publishes `event` on `edgex/events/device/{service}/{profile}/{device}/{source}`.
pub(crate) async fn publish(svc: &Service, event: &Event) -> Result<(), EdgeXError> {
    let topic = topic::event(&svc.name, &event.profile_name, &event.device_name, &event.source_name);
    let payload = EventPayload { api_version: API_VERSION, request_id: uuid::Uuid::new_v4().to_string(), event };
    let envelope = MessageEnvelope::json(&payload, None)
        .map_err(|e| EdgeXError::server(format!("cannot encode the event of {}: {e}", event.device_name)))?;
    oxedge_bus::publish_envelope(svc.bus.as_ref(), &topic, &envelope).await.map_err(|e| {
        EdgeXError::new(
            ErrorKind::ServiceUnavailable,
            format!("cannot publish the event of {} on {topic}: {e}", event.device_name),
        )
    })?;
    svc.metrics.event_published();
    Ok(())
}

/// Publishes `event`, logging a failure: the command itself succeeded.
async fn publish_logged(svc: &Service, event: &Event) {
    if let Err(error) = publish(svc, event).await {
        tracing::warn!(device = %event.device_name, source = %event.source_name, %error, "Event not published.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn sdk_parameters_are_flags_and_the_rest_goes_to_the_driver_encoded_as_go_does() {
        let o = Options::parse(&query(&[])).unwrap();
        assert!(!o.push && o.return_event && o.raw_query.is_empty());
        let o = Options::parse(&query(&[
            ("ds-pushevent", "true"),
            ("ds-returnevent", "false"),
            ("ds-other", "x"),
            ("b", "two words"),
            ("a", "1&2"),
        ]))
        .unwrap();
        assert!(o.push && !o.return_event);
        assert_eq!(o.raw_query, "a=1%262&b=two+words");
        assert!(Options::parse(&query(&[("ds-returnevent", "")])).unwrap().return_event);
        let err = Options::parse(&query(&[("ds-returnevent", "nope")])).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(err.message.contains("ds-returnevent"), "{}", err.message);
    }

    #[test]
    fn mappings_turn_set_values_back_into_keys() {
        let op = ResourceOperation {
            device_resource: "Power".into(),
            default_value: String::new(),
            mappings: [("0".to_owned(), "off".to_owned()), ("1".to_owned(), "on".to_owned())].into(),
        };
        assert_eq!(unmap(&op, Json::from("on")), Json::from("1"));
        assert_eq!(unmap(&op, Json::from("dim")), Json::from("dim"), "unmapped values pass as given");
        assert_eq!(unmap(&op, Json::from(1)), Json::from(1));
    }

    #[test]
    fn origins_never_repeat() {
        let mut last = 0;
        for _ in 0..10_000 {
            let o = unique_origin();
            assert!(o > last);
            last = o;
        }
    }
}
