//! oxedge-app-sdk: application services as function pipelines, in the way of EdgeX's
//! app-functions-sdk.
//!
//! A trigger (the message bus, an external MQTT broker, or HTTP POST) hands each message to
//! the [`Pipeline`]s whose topics match. A pipeline calls its [`Function`]s in order, each
//! taking the [`Data`] the previous one returned; the built-in [`functions`] filter,
//! transform, compress, encrypt, batch and tag; an export ([`export`]) sends the result
//! north, through store-and-forward ([`forward`]) so that nothing is lost while the cloud is
//! away. A message is acknowledged on the bus only once every pipeline is done with it:
//! exported, durably stored for retry, filtered out, or failed for good.
//!
//! A service is a `build` function making the pipelines from an [`AppContext`], run by
//! [`main`] (a binary) or [`run`] (inside another program, such as the all-in-one).
//! `docs/app-sdk.md` is the guide.

pub mod app;
pub mod config;
pub mod context;
pub mod data;
pub mod export;
pub mod forward;
pub mod function;
pub mod functions;
mod metrics;
pub mod pipeline;
pub mod secrets;
pub mod trigger;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::web;
use anyhow::{anyhow, bail, Context as _};
use oxedge_bus::SubscribeOptions;
use oxedge_runtime::Binary;

pub use app::AppContext;
pub use async_trait::async_trait;
pub use config::AppServiceConfig;
pub use context::Context;
pub use data::Data;
pub use function::{from_fn, Function, FunctionError};
pub use oxedge_runtime::ServiceContext;
pub use pipeline::Pipeline;

impl oxedge_runtime::ServiceConfig for AppServiceConfig {
    fn log(&self) -> &oxedge_runtime::config::LogSection {
        &self.log
    }
    fn service(&self) -> &oxedge_runtime::config::ServiceSection {
        &self.service
    }
    fn service_mut(&mut self) -> &mut oxedge_runtime::config::ServiceSection {
        &mut self.service
    }
    fn bus(&self) -> &oxedge_bus::BusConfig {
        &self.bus
    }
    fn validate(&self) -> anyhow::Result<()> {
        AppServiceConfig::validate(self)
    }
    /// The message bus trigger takes its messages from the bus; the HTTP and external MQTT
    /// triggers need none.
    fn joins_bus(&self) -> bool {
        self.trigger.kind == TriggerType::EdgexMessagebus
    }
}

use crate::config::TriggerType;
use crate::metrics::PipelineMetrics;
use crate::pipeline::{Publisher, Runner};
use crate::trigger::bus::{BusTrigger, Format};
use crate::trigger::http::HttpTrigger;

/// Runs an app service binary named `name` until SIGTERM or Ctrl-C (or until one of its
/// tasks fails), with the pipelines `build` makes.
///
/// Reads the configuration file given by `-c/--config` (or `OXEDGE_CONFIG_FILE`), then
/// `OXEDGE_<SECTION>_<KEY>` variables; `service.port` 0 (the default) means
/// `default_port`. With the message bus trigger, joins the bus first, answering HTTP as not
/// ready while the broker is away; then does what [`run`] does.
pub fn main<B>(name: &'static str, version: &'static str, default_port: u16, build: B) -> anyhow::Result<()>
where
    B: FnOnce(&AppContext) -> anyhow::Result<Vec<Pipeline>> + Send + 'static,
{
    let binary = Binary { name, version, about: "An EdgeX-compatible application service.", default_port };
    oxedge_runtime::main(binary, move |ctx, cfg: AppServiceConfig, listener| run(ctx, cfg, build, listener))
}

/// Serves the app service `ctx` names on `listener` with the pipelines `build` makes, its
/// message bus trigger on the context's bus, until shutdown.
///
/// Serves `/api/v3/ping|version|config|health`, `/metrics`, and `POST /api/v3/trigger` when
/// the trigger is `http`. On shutdown the trigger stops taking messages, the messages in
/// flight finish (up to `service.shutdown_grace`; what is left stays unacknowledged and
/// comes again), then the exports are told to stop ([`AppContext::shutdown`]) and waited for.
pub async fn run<B>(ctx: ServiceContext, cfg: AppServiceConfig, build: B, listener: TcpListener) -> anyhow::Result<()>
where
    B: FnOnce(&AppContext) -> anyhow::Result<Vec<Pipeline>>,
{
    let name = ctx.name();
    cfg.validate()?;
    let mut common = ctx.common(&cfg)?;
    let registry = common.registry();
    let metrics = PipelineMetrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    let secrets = cfg.secrets.build()?;
    let app = AppContext::new(name, cfg.clone(), secrets.clone(), registry);
    let pipelines = build(&app).context("Failed to build the pipelines.")?;
    check_pipelines(&pipelines, cfg.trigger.kind)?;
    let filters = subscription_filters(&pipelines, &cfg.trigger.subscribe_topics);

    let trigger = &cfg.trigger;
    let publisher = (!trigger.publish_topic.is_empty() && trigger.kind != TriggerType::Http).then(|| {
        Arc::new(Publisher {
            bus: OnceLock::new(),
            topic: trigger.publish_topic.clone(),
            envelope: trigger.kind == TriggerType::EdgexMessagebus,
        })
    });
    let runner = Runner::start(pipelines, trigger.max_in_flight, publisher.clone(), secrets, metrics.clone());
    let readiness = Readiness::new("the trigger is not subscribed yet");
    let check = readiness.clone();
    common.add_health_check("trigger", move || {
        let state = check.get();
        Box::pin(async move { state })
    });

    let stop = ctx.shutdown().child_token();
    let options = SubscribeOptions {
        durable: Some(if trigger.durable_name.is_empty() { name.to_owned() } else { trigger.durable_name.clone() }),
        capacity: trigger.capacity,
    };
    let mut http_trigger = None;
    let trigger_task = match trigger.kind {
        TriggerType::Http => {
            readiness.set(Ok(()));
            http_trigger = Some(web::Data::new(HttpTrigger { runner: runner.clone(), target: trigger.target_type }));
            common.set_openapi(trigger::http::openapi());
            None
        }
        TriggerType::EdgexMessagebus => {
            let bus = ctx.bus().clone();
            if let Some(publisher) = &publisher {
                let _ = publisher.bus.set(bus.clone());
            }
            let run = BusTrigger {
                bus,
                filters,
                options,
                format: Format::Envelope,
                target: trigger.target_type,
                runner: runner.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
            }
            .run(stop.clone());
            Some(tokio::spawn(async move { Ok(run.await) }))
        }
        TriggerType::ExternalMqtt => {
            let external = &trigger.external_mqtt;
            let bus = oxedge_bus::config::connect(&external.bus_config(), name)
                .await
                .map_err(|e| anyhow!("Invalid configuration at key `trigger.external_mqtt`: {e}"))?;
            if let Some(publisher) = &publisher {
                let _ = publisher.bus.set(bus.clone());
            }
            let durable = if external.client_id.is_empty() { name.to_owned() } else { external.client_id.clone() };
            let options = SubscribeOptions { durable: external.durable.then_some(durable), ..options };
            let run = BusTrigger {
                bus,
                filters,
                options,
                format: Format::Raw,
                target: trigger.target_type,
                runner: runner.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
            }
            .run(stop.clone());
            Some(tokio::spawn(async move { Ok(run.await) }))
        }
    };
    let trigger_failed = stop.clone();
    let trigger_task = trigger_task.map(|task| {
        tokio::spawn(async move {
            let result = task.await.unwrap_or_else(|e| Err(anyhow!("The trigger task failed: {e}")));
            if let Err(error) = &result {
                tracing::error!(error = %format!("{error:#}"), "The trigger failed; stopping.");
                trigger_failed.cancel();
            }
            result
        })
    });

    tracing::info!(service = name, trigger = ?cfg.trigger.kind, "Starting the app service.");
    let served = oxedge_runtime::serve(common, &cfg.service, listener, stop.clone(), move |c| {
        if let Some(http_trigger) = &http_trigger {
            trigger::http::configure(c, http_trigger.clone());
        }
    })
    .await;
    stop.cancel();
    let trigger_result = match trigger_task {
        Some(task) => task.await.unwrap_or_else(|e| Err(anyhow!("The trigger task failed: {e}"))),
        None => Ok(None),
    };

    let grace = Duration::from_secs(cfg.service.shutdown_grace.max(1));
    runner.close();
    if tokio::time::timeout(grace, runner.wait()).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "Messages still in flight after the grace period; they stay unacknowledged and come again."
        );
    }
    // The acks of the messages finished meanwhile went out on the subscription's connection.
    let trigger_result = trigger_result.map(drop);
    app.shutdown().cancel();
    app.tasks().close();
    if tokio::time::timeout(grace, app.tasks().wait()).await.is_err() {
        tracing::warn!(grace_secs = grace.as_secs(), "Exports did not stop within the grace period.");
    }
    tracing::info!(service = name, "App service stopped.");
    served.and(trigger_result)
}

/// Refuses pipelines the trigger cannot run, naming the pipeline.
fn check_pipelines(pipelines: &[Pipeline], trigger: TriggerType) -> anyhow::Result<()> {
    if pipelines.is_empty() {
        bail!("The service has no pipeline.");
    }
    let mut ids = BTreeSet::new();
    for pipeline in pipelines {
        if !ids.insert(pipeline.id.as_str()) {
            bail!("Pipeline '{}' is defined twice.", pipeline.id);
        }
        if let Some(bad) = pipeline.topics.iter().find(|t| !oxedge_bus::topic::is_valid_filter(t)) {
            bail!("Pipeline '{}': topic '{bad}' is not a valid MQTT topic filter.", pipeline.id);
        }
    }
    if trigger == TriggerType::Http && !pipelines.iter().any(takes_everything) {
        bail!("The http trigger runs the pipelines whose topics are empty or '#', and there is none.");
    }
    Ok(())
}

/// Whether a pipeline takes every message the trigger receives.
fn takes_everything(pipeline: &Pipeline) -> bool {
    pipeline.topics.is_empty() || pipeline.topics.iter().any(|t| t == "#")
}

/// What the trigger subscribes to: each pipeline's topics, and `subscribe_topics` for the
/// pipelines that take everything.
fn subscription_filters(pipelines: &[Pipeline], subscribe_topics: &[String]) -> Vec<String> {
    let mut filters = BTreeSet::new();
    for pipeline in pipelines {
        if takes_everything(pipeline) {
            filters.extend(subscribe_topics.iter().cloned());
        } else {
            filters.extend(pipeline.topics.iter().cloned());
        }
    }
    filters.into_iter().collect()
}

/// Whether the trigger is subscribed, for `/api/v3/health`.
#[derive(Clone)]
pub(crate) struct Readiness(Arc<Mutex<Result<(), String>>>);

impl Readiness {
    fn new(reason: &str) -> Self {
        Self(Arc::new(Mutex::new(Err(reason.to_owned()))))
    }

    fn get(&self) -> Result<(), String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, state: Result<(), String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}
