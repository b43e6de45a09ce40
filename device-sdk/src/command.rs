//! Executing a command (a device command or a device resource) on a device: reads become
//! events, writes are checked against the profile before they reach the driver.

use std::collections::BTreeMap;

use oxedge_contracts::{EdgeXError, Event};
use serde_json::Value as Json;

use crate::driver::CommandValue;
use crate::service::Service;

/// Reads `command` of `device`; publishes the event when `ds-pushevent=true` and returns
/// it unless `ds-returnevent=false`.
pub(crate) async fn get(
    svc: &Service,
    device: &str,
    command: &str,
    query: &BTreeMap<String, String>,
) -> Result<Option<Event>, EdgeXError> {
    let _ = (svc, device, command, query);
    todo!("command get")
}

/// Writes the values of `body` (resource → value) through `command` of `device`.
pub(crate) async fn set(
    svc: &Service,
    device: &str,
    command: &str,
    body: &serde_json::Map<String, Json>,
    query: &BTreeMap<String, String>,
) -> Result<(), EdgeXError> {
    let _ = (svc, device, command, body, query);
    todo!("command set")
}

/// Publishes values a driver read on its own (asynchronous readings) as one event of `source`.
pub(crate) async fn push_values(
    svc: &Service,
    device: &str,
    source: &str,
    values: Vec<CommandValue>,
) -> Result<(), EdgeXError> {
    let _ = (svc, device, source, values);
    todo!("push values")
}
