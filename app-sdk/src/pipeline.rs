//! [`Pipeline`]: an ordered list of functions bound to topics, and the runner that feeds it.
//!
//! The runner gives each pipeline a task of its own, so a pipeline sees its messages in the
//! order the trigger received them. Each message gets a [`Context`] per pipeline holding its
//! bus delivery; after the functions ran, the message waits out of line for the
//! confirmations its exports added, and its delivery is acknowledged once they resolved, in
//! the order the messages finished. A message matching several pipelines is acknowledged
//! once every one of them is done with it. A function error stops that message only: it is
//! logged with the pipeline, function and correlation id, counted, and acknowledged.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt as _, StreamExt as _};
use oxedge_bus::{topic, AckFuture, Bus, Delivery, MessageEnvelope};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, Instant};
use tokio_util::task::TaskTracker;

use crate::metrics::PipelineMetrics;
use crate::secrets::Secrets;
use crate::{Context, Data, Function, FunctionError};

/// An ordered list of functions run for each message whose topic matches one of `topics`.
#[derive(Clone)]
pub struct Pipeline {
    /// The pipeline's id, in logs, metrics and the `pipelineid` context value.
    pub id: String,
    /// Topic filters (MQTT syntax: `+` one level, `#` the rest) selecting its messages;
    /// `#` takes everything the trigger receives.
    pub topics: Vec<String>,
    /// Its functions, called in order.
    pub functions: Vec<Arc<dyn Function>>,
}

impl Pipeline {
    /// A pipeline `id` running `functions` on the messages of `topics`.
    pub fn new(id: impl Into<String>, topics: Vec<String>, functions: Vec<Arc<dyn Function>>) -> Self {
        Self { id: id.into(), topics, functions }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.functions.iter().map(|function| function.name()).collect();
        f.debug_struct("Pipeline")
            .field("id", &self.id)
            .field("topics", &self.topics)
            .field("functions", &names)
            .finish()
    }
}

/// One message from a trigger, ready for the pipelines.
pub(crate) struct Message {
    /// The topic it arrived on (empty for the HTTP trigger).
    pub topic: String,
    /// Its correlation id.
    pub correlation_id: String,
    /// What the first function gets.
    pub data: Data,
    /// The bus delivery to acknowledge once every pipeline is done with it.
    pub delivery: Option<Delivery>,
}

/// What one pipeline did with one message, for the HTTP trigger's answer.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The pipeline's id.
    pub pipeline: String,
    /// The response data a function set, or the error that stopped the message (with the
    /// function's name).
    pub result: Result<Option<(Bytes, String)>, (String, FunctionError)>,
}

/// Where response data is published after a pipeline (the trigger's `publish_topic`).
pub(crate) struct Publisher {
    /// The bus or external broker, once connected.
    pub bus: OnceLock<Arc<dyn Bus>>,
    /// The topic template.
    pub topic: String,
    /// Whether the data goes inside an EdgeX message envelope (message bus) or as it is
    /// (external MQTT).
    pub envelope: bool,
}

impl Publisher {
    async fn publish(&self, ctx: &Context, bytes: Bytes, content_type: &str) -> Result<(), String> {
        let topic = ctx.apply_template(&self.topic).map_err(|e| format!("trigger.publish_topic: {e}"))?;
        let payload = if self.envelope { envelope(ctx.correlation_id(), bytes, content_type)? } else { bytes };
        let bus = self.bus.get().ok_or("the broker is not connected yet")?;
        bus.publish(&topic, payload).await.map_err(|e| format!("publishing on {topic}: {e}"))
    }
}

/// `bytes` in an EdgeX message envelope: embedded when they are JSON, else as base64.
fn envelope(correlation_id: &str, bytes: Bytes, content_type: &str) -> Result<Bytes, String> {
    use base64::Engine as _;
    let payload = match serde_json::from_slice::<Box<RawValue>>(&bytes) {
        Ok(raw) if crate::data::is_json(content_type) => raw,
        _ => serde_json::value::to_raw_value(&base64::engine::general_purpose::STANDARD.encode(&bytes))
            .map_err(|e| e.to_string())?,
    };
    let mut env = MessageEnvelope::json(&payload, Some(correlation_id)).map_err(|e| e.to_string())?;
    env.content_type = content_type.to_owned();
    env.to_bytes().map_err(|e| e.to_string())
}

/// Runs the pipelines: hands each message to the pipelines whose topics match, each
/// pipeline on a task of its own (so order is kept per pipeline), and acknowledges the
/// message's delivery once every pipeline is done with it and the exports have confirmed,
/// in order. At most `max_in_flight` messages are taken and not yet finished.
#[derive(Clone)]
pub(crate) struct Runner {
    inner: Arc<RunnerInner>,
}

struct Route {
    id: String,
    topics: Vec<String>,
}

struct RunnerInner {
    routes: Vec<Route>,
    /// One per route; `None` once closed.
    senders: RwLock<Option<Vec<mpsc::Sender<Work>>>>,
    window: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    secrets: Secrets,
    metrics: PipelineMetrics,
    tasks: TaskTracker,
}

/// One message for one pipeline.
struct Work {
    ctx: Context,
    data: Data,
    slot: Arc<Slot>,
    reply: Option<mpsc::UnboundedSender<Outcome>>,
}

/// A message's place in the window, given back once every pipeline is done with it.
struct Slot {
    _permit: OwnedSemaphorePermit,
    in_flight: Arc<AtomicUsize>,
    metrics: PipelineMetrics,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = self.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        self.metrics.set_in_flight(now);
    }
}

/// How a pipeline's functions ended for one message.
enum End {
    /// Every function ran.
    Processed,
    /// A function returned no data before the last.
    Filtered,
    /// A function failed: its name and error.
    Failed(String, FunctionError),
}

/// A message (or a flush) whose functions have run, waiting for its confirmations.
struct Finished {
    ctx: Context,
    end: End,
    slot: Option<Arc<Slot>>,
    reply: Option<mpsc::UnboundedSender<Outcome>>,
}

impl Runner {
    /// Starts a task per pipeline.
    pub(crate) fn start(
        pipelines: Vec<Pipeline>,
        max_in_flight: usize,
        publisher: Option<Arc<Publisher>>,
        secrets: Secrets,
        metrics: PipelineMetrics,
    ) -> Self {
        let tasks = TaskTracker::new();
        let mut routes = Vec::with_capacity(pipelines.len());
        let mut senders = Vec::with_capacity(pipelines.len());
        for pipeline in pipelines {
            let (tx, rx) = mpsc::channel(max_in_flight.max(1));
            let (finished_tx, finished_rx) = mpsc::unbounded_channel();
            routes.push(Route { id: pipeline.id.clone(), topics: pipeline.topics.clone() });
            senders.push(tx);
            tasks.spawn(settle_in_order(pipeline.id.clone(), finished_rx, publisher.clone(), metrics.clone()));
            tasks.spawn(work(pipeline, rx, finished_tx, secrets.clone(), metrics.clone()));
        }
        Self {
            inner: Arc::new(RunnerInner {
                routes,
                senders: RwLock::new(Some(senders)),
                window: Arc::new(Semaphore::new(max_in_flight.max(1))),
                in_flight: Arc::new(AtomicUsize::new(0)),
                secrets,
                metrics,
                tasks,
            }),
        }
    }

    /// Hands `message` to the pipelines its topic matches, once the window has room;
    /// returns how many (each sends one [`Outcome`] to `reply`). A message no pipeline
    /// takes is counted and acknowledged at once.
    pub(crate) async fn submit(&self, message: Message, reply: Option<mpsc::UnboundedSender<Outcome>>) -> usize {
        let inner = &self.inner;
        let matched: Vec<usize> =
            (0..inner.routes.len()).filter(|&i| route_matches(&inner.routes[i], &message.topic)).collect();
        if matched.is_empty() {
            inner.metrics.unmatched();
            tracing::debug!(topic = %message.topic, "No pipeline takes this topic; acknowledged.");
            if let Some(delivery) = message.delivery {
                ack(delivery, "").await;
            }
            return 0;
        }
        let Ok(permit) = inner.window.clone().acquire_owned().await else { return 0 };
        let now = inner.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        inner.metrics.set_in_flight(now);
        let slot =
            Arc::new(Slot { _permit: permit, in_flight: inner.in_flight.clone(), metrics: inner.metrics.clone() });
        let senders: Vec<mpsc::Sender<Work>> = {
            let guard = inner.senders.read().unwrap_or_else(|e| e.into_inner());
            let Some(all) = guard.as_ref() else { return 0 };
            matched.iter().map(|&i| all[i].clone()).collect()
        };
        let Message { topic, correlation_id, data, delivery } = message;
        let values = context_values(&topic, &correlation_id, &data);
        let count = matched.len();
        let mut deliveries: Vec<Option<Delivery>> = match delivery {
            Some(delivery) => split(delivery, count).into_iter().map(Some).collect(),
            None => Vec::new(),
        };
        let mut data = Some(data);
        for (n, (&i, tx)) in matched.iter().zip(senders).enumerate() {
            let id = &inner.routes[i].id;
            let ctx = Context::new(correlation_id.clone(), id.clone(), inner.secrets.clone());
            for (key, value) in &values {
                ctx.set_value(key, value.clone());
            }
            ctx.set_value("pipelineid", id.clone());
            if let Some(delivery) = deliveries.get_mut(n).and_then(Option::take) {
                ctx.hold_delivery(delivery);
            }
            let item = if n + 1 == count { data.take() } else { data.clone() };
            let Some(item) = item else { break };
            inner.metrics.received(id);
            // A pipeline gone (the runner is closing) leaves the delivery unacknowledged.
            let _ = tx.send(Work { ctx, data: item, slot: slot.clone(), reply: reply.clone() }).await;
        }
        count
    }

    /// Stops taking messages: the pipelines finish those they have, then their tasks end.
    pub(crate) fn close(&self) {
        self.inner.senders.write().unwrap_or_else(|e| e.into_inner()).take();
        self.inner.tasks.close();
    }

    /// Waits until every pipeline task has ended (after [`close`](Self::close)).
    pub(crate) async fn wait(&self) {
        self.inner.tasks.wait().await;
    }
}

fn route_matches(route: &Route, topic: &str) -> bool {
    route.topics.is_empty() || route.topics.iter().any(|filter| topic::matches(filter, topic))
}

/// The context values the trigger sets before the functions run (and `pipelineid`).
fn context_values(topic: &str, correlation_id: &str, data: &Data) -> Vec<(&'static str, String)> {
    let mut values = vec![("receivedtopic", topic.to_owned()), ("correlationid", correlation_id.to_owned())];
    if let Data::Event(event) = data {
        values.push(("devicename", event.device_name.clone()));
        values.push(("profilename", event.profile_name.clone()));
        values.push(("sourcename", event.source_name.clone()));
    }
    values
}

/// `delivery` as `n` deliveries, the original acknowledged when the last of them is.
fn split(delivery: Delivery, n: usize) -> Vec<Delivery> {
    if n <= 1 {
        return vec![delivery];
    }
    let (topic, payload) = (delivery.topic.clone(), delivery.payload.clone());
    let shared = Arc::new(Mutex::new((n, Some(delivery))));
    (0..n)
        .map(|_| {
            let shared = shared.clone();
            let acker = move || -> AckFuture {
                let last = {
                    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
                    state.0 -= 1;
                    if state.0 == 0 {
                        state.1.take()
                    } else {
                        None
                    }
                };
                Box::pin(async move {
                    match last {
                        Some(delivery) => delivery.ack().await,
                        None => Ok(()),
                    }
                })
            };
            Delivery::with_acker(topic.clone(), payload.clone(), Box::new(acker))
        })
        .collect()
}

async fn ack(delivery: Delivery, pipeline: &str) {
    let topic = delivery.topic.clone();
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%pipeline, %topic, %error, "Acknowledging a message failed; the broker may deliver it again.");
    }
}

/// Runs the functions from the first, in `ctx`.
async fn run_functions(pipeline: &Pipeline, from: usize, ctx: &Context, mut data: Data) -> End {
    let functions = &pipeline.functions[from.min(pipeline.functions.len())..];
    for (i, function) in functions.iter().enumerate() {
        let call = AssertUnwindSafe(function.call(ctx, data)).catch_unwind().await;
        match call {
            Ok(Ok(Some(next))) => data = next,
            Ok(Ok(None)) if i + 1 == functions.len() => return End::Processed,
            Ok(Ok(None)) => return End::Filtered,
            Ok(Err(error)) => return End::Failed(function.name().to_owned(), error),
            Err(panic) => return End::Failed(function.name().to_owned(), panicked(panic)),
        }
    }
    End::Processed
}

fn panicked(panic: Box<dyn std::any::Any + Send>) -> FunctionError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    FunctionError::new(format!("the function panicked: {what}"))
}

/// Logs and counts how a message ended.
fn record(pipeline: &str, ctx: &Context, end: &End, elapsed: Duration, metrics: &PipelineMetrics) {
    match end {
        End::Processed => metrics.processed(pipeline, elapsed),
        End::Filtered => metrics.filtered(pipeline, elapsed),
        End::Failed(function, error) => {
            metrics.failed(pipeline, function);
            tracing::warn!(
                %pipeline, %function, correlation_id = ctx.correlation_id(), %error,
                "Pipeline function failed; this message goes no further."
            );
        }
    }
}

/// One pipeline's task: its messages in order, and the timed flushes of its functions.
async fn work(
    pipeline: Pipeline,
    mut rx: mpsc::Receiver<Work>,
    finished: mpsc::UnboundedSender<Finished>,
    secrets: Secrets,
    metrics: PipelineMetrics,
) {
    let flushers: Vec<(usize, Duration)> = pipeline
        .functions
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.flush_every().filter(|d| !d.is_zero()).map(|every| (i, every)))
        .collect();
    let mut due: Vec<Instant> = flushers.iter().map(|(_, every)| Instant::now() + *every).collect();
    loop {
        let next = due.iter().min().copied();
        tokio::select! {
            biased;
            () = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                for (k, (index, every)) in flushers.iter().enumerate() {
                    if due[k] <= now {
                        due[k] = now + *every;
                        flush(&pipeline, *index, &finished, &secrets, &metrics).await;
                    }
                }
            }
            work = rx.recv() => {
                let Some(work) = work else { break };
                let started = Instant::now();
                let end = run_functions(&pipeline, 0, &work.ctx, work.data).await;
                record(&pipeline.id, &work.ctx, &end, started.elapsed(), &metrics);
                let _ = finished.send(Finished { ctx: work.ctx, end, slot: Some(work.slot), reply: work.reply });
            }
        }
    }
    // Closing: what the functions hold goes on now rather than after a restart.
    for (index, _) in &flushers {
        flush(&pipeline, *index, &finished, &secrets, &metrics).await;
    }
}

/// Calls `flush` of function `index` and runs what it releases through the functions after it.
async fn flush(
    pipeline: &Pipeline,
    index: usize,
    finished: &mpsc::UnboundedSender<Finished>,
    secrets: &Secrets,
    metrics: &PipelineMetrics,
) {
    let ctx = Context::new(uuid::Uuid::new_v4().to_string(), pipeline.id.clone(), secrets.clone());
    ctx.set_value("correlationid", ctx.correlation_id().to_owned());
    ctx.set_value("pipelineid", pipeline.id.clone());
    let function = &pipeline.functions[index];
    let started = Instant::now();
    let end = match AssertUnwindSafe(function.flush(&ctx)).catch_unwind().await {
        Ok(Ok(Some(data))) => run_functions(pipeline, index + 1, &ctx, data).await,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => End::Failed(function.name().to_owned(), error),
        Err(panic) => End::Failed(function.name().to_owned(), panicked(panic)),
    };
    record(&pipeline.id, &ctx, &end, started.elapsed(), metrics);
    let _ = finished.send(Finished { ctx, end, slot: None, reply: None });
}

/// What became of a finished message once its confirmations resolved.
struct Settled {
    finished: Finished,
    /// Every export took its data (delivered, stored, or given up by policy).
    taken: bool,
    response: Option<(Bytes, String)>,
}

/// Waits for each finished message's confirmations out of line, and acknowledges the
/// deliveries in the order the messages finished.
async fn settle_in_order(
    pipeline: String,
    mut rx: mpsc::UnboundedReceiver<Finished>,
    publisher: Option<Arc<Publisher>>,
    metrics: PipelineMetrics,
) {
    let mut pending = FuturesOrdered::new();
    loop {
        tokio::select! {
            finished = rx.recv() => match finished {
                Some(finished) => pending.push_back(settle(pipeline.clone(), finished, publisher.clone(), metrics.clone())),
                None => break,
            },
            Some(settled) = pending.next(), if !pending.is_empty() => release(&pipeline, settled).await,
        }
    }
    while let Some(settled) = pending.next().await {
        release(&pipeline, settled).await;
    }
}

async fn settle(
    pipeline: String,
    finished: Finished,
    publisher: Option<Arc<Publisher>>,
    metrics: PipelineMetrics,
) -> Settled {
    let mut taken = true;
    for confirmation in finished.ctx.take_confirmations() {
        match confirmation.await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                metrics.given_up(&pipeline);
                tracing::warn!(
                    %pipeline, correlation_id = finished.ctx.correlation_id(), %reason,
                    "An export gave this message up."
                );
            }
            Err(_) => taken = false,
        }
    }
    let response = finished.ctx.take_response();
    if let (Some(publisher), Some((bytes, content_type)), End::Processed | End::Filtered) =
        (&publisher, &response, &finished.end)
    {
        if let Err(error) = publisher.publish(&finished.ctx, bytes.clone(), content_type).await {
            tracing::warn!(%pipeline, correlation_id = finished.ctx.correlation_id(), %error, "Publishing the response data failed.");
        }
    }
    Settled { finished, taken, response }
}

async fn release(pipeline: &str, settled: Settled) {
    let Settled { finished, taken, response } = settled;
    let deliveries = finished.ctx.take_deliveries();
    if taken {
        for delivery in deliveries {
            ack(delivery, pipeline).await;
        }
    } else if !deliveries.is_empty() {
        tracing::warn!(
            %pipeline, correlation_id = finished.ctx.correlation_id(),
            "An export stopped before it took this message; it stays unacknowledged and comes again."
        );
    }
    if let Some(reply) = finished.reply {
        let result = match finished.end {
            End::Failed(function, error) => Err((function, error)),
            End::Processed | End::Filtered => Ok(response),
        };
        let _ = reply.send(Outcome { pipeline: pipeline.to_owned(), result });
    }
    drop(finished.slot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn a_split_delivery_is_acknowledged_once_every_part_is() {
        let acked = Arc::new(AtomicBool::new(false));
        let flag = acked.clone();
        let acker = move || -> AckFuture {
            flag.store(true, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        };
        let delivery = Delivery::with_acker("t".into(), Bytes::from_static(b"x"), Box::new(acker));
        let mut parts = split(delivery, 3);
        assert_eq!(parts.len(), 3);
        parts.pop().unwrap().ack().await.unwrap();
        parts.pop().unwrap().ack().await.unwrap();
        assert!(!acked.load(Ordering::SeqCst), "acknowledged before every pipeline was done");
        let last = parts.pop().unwrap();
        assert_eq!(last.topic, "t");
        last.ack().await.unwrap();
        assert!(acked.load(Ordering::SeqCst));
    }

    #[test]
    fn response_data_goes_into_an_envelope_embedded_or_as_base64() {
        let wire = envelope("c1", Bytes::from_static(br#"{"a":1}"#), "application/json").unwrap();
        let env = MessageEnvelope::from_bytes(&wire, "t").unwrap();
        assert_eq!((env.correlation_id.as_str(), env.payload.get()), ("c1", r#"{"a":1}"#));
        let wire = envelope("c2", Bytes::from_static(b"<a/>"), "application/xml").unwrap();
        let env = MessageEnvelope::from_bytes(&wire, "t").unwrap();
        assert_eq!(env.content_type, "application/xml");
        assert_eq!(env.payload_bytes().unwrap(), b"<a/>");
    }
}
