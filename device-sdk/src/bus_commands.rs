//! Command requests arriving on the message bus (EdgeX 4's core-command → device service).
//!
//! As device-sdk-go's `messaging.SubscribeCommands` does: a request arrives on
//! `edgex/device/command/request/{service}/{device}/{command}/{get|set}` in a message
//! envelope (`requestID`, `correlationID`, `queryParams`, and for `set` a payload of
//! resource → value); the answer goes to `edgex/response/{service}/{requestID}`: an
//! `EventResponse` (payload `null` when `ds-returnevent=false`, and for a `set`), or
//! `errorCode` 1 with the error text. Requests run concurrently, at most
//! [`MAX_IN_FLIGHT`] at a time; beyond that they are answered "busy" at once rather than
//! queued behind a slow device.

use std::sync::Arc;

use oxedge_bus::{topic, Delivery, MessageEnvelope, SubscribeOptions};
use oxedge_contracts::{BaseResponse, EventResponse};
use serde_json::{Map, Value as Json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::command;
use crate::service::Service;

/// Command requests executed at once (device-sdk-go's `defaultMaxConcurrentCommands`).
const MAX_IN_FLIGHT: usize = 32;

/// Answers command requests on `edgex/device/command/request/{service}/#` until `shutdown`.
pub(crate) async fn run(svc: Arc<Service>, shutdown: CancellationToken) {
    let filters = [topic::command_requests_of(&svc.name)];
    let options = SubscribeOptions::default();
    let subscribed = oxedge_runtime::subscribe_retrying(&*svc.bus, &filters, options, "command requests", &shutdown);
    let Some(mut sub) = subscribed.await else { return };
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return,
            d = sub.next() => d,
        };
        let Some(delivery) = delivery else {
            tracing::warn!(filter = %filters[0], "The bus closed the command request subscription.");
            return;
        };
        let Some(request) = Request::parse(&delivery) else {
            ack(delivery).await;
            continue;
        };
        ack(delivery).await;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(device = %request.device, command = %request.command, "Too many command requests at once; refusing one.");
            let reply = request.error("device service busy: too many concurrent commands");
            respond(&svc, &request.reply_topic(&svc), reply).await;
            continue;
        };
        let svc = svc.clone();
        tokio::spawn(async move {
            let reply = request.execute(&svc).await;
            respond(&svc, &request.reply_topic(&svc), reply).await;
            drop(slot);
        });
    }
}

async fn ack(delivery: Delivery) {
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, "Cannot acknowledge a command request.");
    }
}

async fn respond(svc: &Service, topic: &str, reply: MessageEnvelope) {
    if let Err(error) = oxedge_bus::publish_envelope(svc.bus.as_ref(), topic, &reply).await {
        tracing::warn!(%error, topic, "Cannot publish a command response.");
    }
}

/// One command request, as far as it could be read.
struct Request {
    device: String,
    command: String,
    method: String,
    request_id: String,
    correlation_id: String,
    /// The envelope, or why it could not be read.
    envelope: Result<MessageEnvelope, String>,
}

impl Request {
    /// Reads a delivery; `None` (logged) when it cannot be answered: no device, command and
    /// method in the topic, or no request id.
    fn parse(delivery: &Delivery) -> Option<Self> {
        let levels: Vec<&str> = delivery.topic.split('/').collect();
        let n = levels.len();
        if n < 4 {
            tracing::warn!(topic = %delivery.topic, "Command request topic is not …/{{service}}/{{device}}/{{command}}/{{method}}; skipped.");
            return None;
        }
        let (device, command, method) = (topic::decode(levels[n - 3]), topic::decode(levels[n - 2]), levels[n - 1]);
        let envelope = MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic).map_err(|e| e.to_string());
        let (request_id, correlation_id) = match &envelope {
            Ok(env) => (env.request_id.clone(), env.correlation_id.clone()),
            Err(_) => ids_of(&delivery.payload),
        };
        if request_id.is_empty() {
            tracing::warn!(topic = %delivery.topic, "Command request without a requestID; skipped.");
            return None;
        }
        Some(Self { device, command, method: method.to_owned(), request_id, correlation_id, envelope })
    }

    fn reply_topic(&self, svc: &Service) -> String {
        topic::response(&svc.name, &self.request_id)
    }

    fn error(&self, message: &str) -> MessageEnvelope {
        MessageEnvelope::error(&self.request_id, &self.correlation_id, message)
    }

    fn ok<T: serde::Serialize>(&self, payload: &T) -> MessageEnvelope {
        match MessageEnvelope::json(payload, Some(&self.correlation_id)) {
            Ok(env) => env.with_request_id(self.request_id.clone()),
            Err(e) => self.error(&format!("cannot encode the response: {e}")),
        }
    }

    async fn execute(&self, svc: &Service) -> MessageEnvelope {
        let env = match &self.envelope {
            Ok(env) => env,
            Err(e) => return self.error(e),
        };
        let query = &env.query_params;
        if self.method.eq_ignore_ascii_case("get") {
            match command::get(svc, &self.device, &self.command, query).await {
                Ok(Some(event)) => {
                    self.ok(&EventResponse { base: BaseResponse::new(self.request_id.clone(), 200), event })
                }
                Ok(None) => self.ok(&Json::Null),
                Err(e) => self.failed(e),
            }
        } else if self.method.eq_ignore_ascii_case("set") {
            let body: Map<String, Json> = match env.payload_as() {
                Ok(body) => body,
                Err(e) => return self.error(&format!("set command payload: {e}")),
            };
            match command::set(svc, &self.device, &self.command, &body, query).await {
                Ok(()) => self.ok(&Json::Null),
                Err(e) => self.failed(e),
            }
        } else {
            self.error(&format!("unknown command method '{}', only 'get' or 'set' is allowed", self.method))
        }
    }

    fn failed(&self, e: oxedge_contracts::EdgeXError) -> MessageEnvelope {
        tracing::debug!(device = %self.device, command = %self.command, method = %self.method, error = %e, "Command request failed.");
        self.error(&e.message)
    }
}

/// The request and correlation ids of a message that is not a valid envelope, when it is at
/// least a JSON object carrying them.
fn ids_of(payload: &[u8]) -> (String, String) {
    let v: Json = serde_json::from_slice(payload).unwrap_or(Json::Null);
    let text = |k: &str| v.get(k).and_then(Json::as_str).unwrap_or_default().to_owned();
    (text("requestID"), text("correlationID"))
}
