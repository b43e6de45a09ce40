//! core-command on the message bus, as EdgeX 4 serves it to other services and external
//! clients: commands on `edgex/core/command/request/{device}/{command}/{get|set}` and
//! command queries on `edgex/core/commandquery/request/{device|all}`, answered on
//! `edgex/response/core-command/{requestId}`.

use std::sync::Arc;
use std::time::Duration;

use oxedge_bus::{topic, Bus, Delivery, MessageEnvelope, SubscribeOptions};
use oxedge_contracts::{BaseResponse, DeviceCoreCommandResponse, EdgeXError, MultiDeviceCoreCommandsResponse};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::command::{CommandRequest, Commands, Method, SERVICE_NAME};
use crate::reply::to_envelope;

/// Where other services send commands.
pub const COMMAND_REQUESTS: &str = "edgex/core/command/request/#";
/// Where other services ask for devices' commands.
pub const QUERY_REQUESTS: &str = "edgex/core/commandquery/request/#";

/// The most bus requests answered at once; more wait with the broker.
const MAX_IN_FLIGHT: usize = 1024;

/// How long publishing one response may wait for the broker.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers bus requests until `shutdown`; each request runs on its own task, so a slow
/// device delays only its own answer, and at most [`MAX_IN_FLIGHT`] run at once.
pub async fn run(commands: Commands, bus: Arc<dyn Bus>, max_result_count: usize, shutdown: CancellationToken) {
    let filters = [COMMAND_REQUESTS.to_owned(), QUERY_REQUESTS.to_owned()];
    let options = SubscribeOptions::default();
    let subscribed = oxedge_runtime::subscribe_retrying(&*bus, &filters, options, "command requests", &shutdown);
    let Some(mut sub) = subscribed.await else { return };
    let tasks = TaskTracker::new();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = in_flight.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break,
            d = sub.next() => match d { Some(d) => d, None => break },
        };
        let (commands, bus) = (commands.clone(), bus.clone());
        tasks.spawn(async move {
            answer(commands, bus, delivery, max_result_count).await;
            drop(permit);
        });
    }
    tasks.close();
    tasks.wait().await;
}

async fn answer(commands: Commands, bus: Arc<dyn Bus>, delivery: Delivery, max_result_count: usize) {
    let request = match MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic) {
        Ok(env) if !env.request_id.trim().is_empty() => env,
        Ok(_) => {
            tracing::warn!(topic = %delivery.topic, "Command request without a requestID ignored: no topic to answer on.");
            let _ = delivery.ack().await;
            return;
        }
        Err(error) => {
            tracing::warn!(%error, topic = %delivery.topic, "Malformed command request skipped.");
            let _ = delivery.ack().await;
            return;
        }
    };
    let (id, cid) = (request.request_id.clone(), request.correlation_id.clone());
    let response = if topic::matches(QUERY_REQUESTS, &delivery.topic) {
        query(&commands, &request, max_result_count)
            .await
            .unwrap_or_else(|e| MessageEnvelope::error(&id, &cid, &e.message))
    } else {
        let outcome = match command_request(&request) {
            Ok(req) => commands.issue(&req).await,
            Err(e) => Err(e),
        };
        to_envelope(outcome, &id, &cid)
    };
    if response.error_code != 0 {
        let text = response.payload_bytes().unwrap_or_default();
        tracing::debug!(topic = %delivery.topic, error = %String::from_utf8_lossy(&text), "Command request failed.");
    }
    let reply_topic = topic::response(SERVICE_NAME, &id);
    match response.to_bytes() {
        Ok(bytes) => match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(&reply_topic, bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, topic = %reply_topic, "Cannot publish a command response."),
            Err(_) => tracing::warn!(topic = %reply_topic, "The broker did not take a command response in time."),
        },
        Err(error) => tracing::warn!(%error, "Cannot encode a command response."),
    }
    let _ = delivery.ack().await;
}

/// The command a request on `…/{device}/{command}/{method}` asks for.
fn command_request(env: &MessageEnvelope) -> Result<CommandRequest, EdgeXError> {
    let levels: Vec<&str> = env.received_topic.split('/').collect();
    let [_, _, _, _, device, command, method] = levels.as_slice() else {
        return Err(EdgeXError::invalid(format!(
            "topic '{}': expected edgex/core/command/request/{{device}}/{{command}}/{{get|set}}",
            env.received_topic
        )));
    };
    let method = Method::parse(method).ok_or_else(|| {
        EdgeXError::invalid(format!("unknown request method '{method}': only 'get' or 'set' is allowed"))
    })?;
    let settings = match method {
        Method::Get => Default::default(),
        Method::Set => env.payload_as().map_err(|e| {
            EdgeXError::invalid(format!("payload: expected a JSON object of resource name → value ({e})"))
        })?,
    };
    Ok(CommandRequest {
        device: topic::decode(device),
        command: topic::decode(command),
        method,
        query: env.query_params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        raw_query: String::new(),
        correlation_id: env.correlation_id.clone(),
        request_id: env.request_id.clone(),
        settings,
    })
}

/// Answers `…/commandquery/request/{device|all}` with the device's (or a page of every
/// device's) commands.
async fn query(
    commands: &Commands,
    env: &MessageEnvelope,
    max_result_count: usize,
) -> Result<MessageEnvelope, EdgeXError> {
    let device = topic::decode(env.received_topic.rsplit('/').next().unwrap_or_default());
    let base = BaseResponse::new(env.request_id.clone(), 200);
    let encode = |e: oxedge_bus::BusError| EdgeXError::server(format!("response: {e}"));
    let response = if device.eq_ignore_ascii_case("all") {
        let q = env.query_params.clone().into_iter().collect();
        let page = oxedge_runtime::reply::paging(&q, max_result_count)?;
        let (total, device_core_commands) = commands.all_commands(page.offset, page.limit, &[]).await?;
        let body = MultiDeviceCoreCommandsResponse { base, total_count: total, device_core_commands };
        MessageEnvelope::json(&body, Some(&env.correlation_id)).map_err(encode)?
    } else {
        let device_core_command = commands.device_commands(&device).await?;
        MessageEnvelope::json(&DeviceCoreCommandResponse { base, device_core_command }, Some(&env.correlation_id))
            .map_err(encode)?
    };
    Ok(response.with_request_id(env.request_id.clone()))
}
