//! The NATS backend: async-nats 0.51, JetStream for publishing and durable subscriptions.
//!
//! Topics become subjects as EdgeX maps them ([`topic::to_nats_subject`]) and come back
//! with [`topic::from_nats_subject`]; the message body is the bytes published (the EdgeX
//! envelope JSON).
//!
//! What it promises, with JetStream on (the default):
//! - At connect, the stream (`edgex`, subjects `edgex.>`) is created if missing, with the
//!   configured max age and size. [`NatsBus::connect`] fails if the server cannot be
//!   reached then; afterwards async-nats reconnects forever.
//! - `publish` on a subject of the stream resolves on the JetStream ack (the message is
//!   stored). It carries a `Nats-Msg-Id`, so when the ack does not come (server down,
//!   restarting) it is sent again with the same id, with backoff, until acked: JetStream
//!   drops the duplicate within its 2-minute window. Subjects outside the stream are
//!   published on core NATS and resolve once the server has them (a flush).
//! - A durable subscription is a JetStream pull consumer with that name (one per filter,
//!   `name-1`, `name-2`… when there are several), explicit acks, `max_ack_pending` =
//!   `capacity`, new messages only when first created. What is published while it is away
//!   is delivered when it comes back, also across restarts of the server (file storage);
//!   a message not acked within `ack_wait` is delivered again.
//! - A non-durable subscription is a core NATS subscription: no acks, messages published
//!   while disconnected are lost, and when the consumer falls behind by more than the
//!   client's subscription capacity the server drops messages (slow consumer).

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use async_trait::async_trait;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{topic, Bus, BusError, Bytes, Delivery, SubscribeOptions, Subscription};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How to authenticate to the NATS server.
#[derive(Clone)]
pub enum NatsAuth {
    /// No credentials.
    None,
    /// User name and password.
    UserPassword(String, String),
    /// A token.
    Token(String),
}

/// The JetStream stream the bus stores messages in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JetStreamSettings {
    /// Stream name.
    pub stream: String,
    /// Subjects it covers, in NATS syntax.
    pub subjects: Vec<String>,
    /// How long messages are kept, in seconds (0: no limit).
    pub max_age_secs: u64,
    /// How many bytes are kept at most, oldest dropped first (-1: no limit).
    pub max_bytes: i64,
    /// How long a durable subscriber has to ack a message before it is delivered again, in seconds.
    pub ack_wait_secs: u64,
}

impl Default for JetStreamSettings {
    fn default() -> Self {
        Self {
            stream: "edgex".to_owned(),
            subjects: vec!["edgex.>".to_owned()],
            max_age_secs: 24 * 3600,
            max_bytes: 1024 * 1024 * 1024,
            ack_wait_secs: 30,
        }
    }
}

/// How to reach a NATS server.
#[derive(Clone)]
pub struct NatsSettings {
    /// `nats://host:port` (several separated by commas).
    pub url: String,
    /// Client name shown by the server.
    pub client_name: String,
    /// Credentials.
    pub auth: NatsAuth,
    /// TLS client configuration; plain TCP when `None`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// JetStream settings; core NATS only when `None`.
    pub jetstream: Option<JetStreamSettings>,
}

impl NatsSettings {
    /// Settings for `url` with JetStream on and no credentials.
    pub fn new(url: impl Into<String>, client_name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_name: client_name.into(),
            auth: NatsAuth::None,
            tls: None,
            jetstream: Some(JetStreamSettings::default()),
        }
    }
}

/// A [`Bus`] over NATS.
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: Option<(jetstream::Context, stream::Stream, JetStreamSettings)>,
    url: String,
}

impl NatsBus {
    /// Connects and makes sure the JetStream stream exists.
    pub async fn connect(settings: NatsSettings) -> Result<Self, BusError> {
        let url = settings.url.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(&settings.client_name)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| (MIN_BACKOFF * 2u32.saturating_pow(attempts as u32)).min(MAX_BACKOFF))
            .event_callback({
                let url = url.clone();
                move |event| {
                    let url = url.clone();
                    async move {
                        match event {
                            async_nats::Event::Disconnected => warn!(%url, "NATS connection lost; reconnecting."),
                            async_nats::Event::Connected => info!(%url, "NATS connected."),
                            other => warn!(%url, event = %other, "NATS client event."),
                        }
                    }
                }
            });
        options = match settings.auth {
            NatsAuth::None => options,
            NatsAuth::UserPassword(user, password) => options.user_and_password(user, password),
            NatsAuth::Token(token) => options.token(token),
        };
        if let Some(tls) = &settings.tls {
            options = options.require_tls(true).tls_client_config((**tls).clone());
        }
        let client = options
            .connect(url.as_str())
            .await
            .map_err(|e| BusError::Connection(format!("cannot connect to NATS at {url}: {e}")))?;
        let jetstream = match settings.jetstream {
            Some(js) => {
                let context = jetstream::new(client.clone());
                let stream = context
                    .get_or_create_stream(stream::Config {
                        name: js.stream.clone(),
                        subjects: js.subjects.clone(),
                        max_age: Duration::from_secs(js.max_age_secs),
                        max_bytes: js.max_bytes,
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| BusError::Refused(format!("JetStream stream '{}': {e}", js.stream)))?;
                Some((context, stream, js))
            }
            None => None,
        };
        Ok(Self { client, jetstream, url })
    }

    fn in_stream(&self, subject: &str) -> bool {
        self.jetstream.as_ref().is_some_and(|(_, _, js)| js.subjects.iter().any(|f| subject_covers(f, subject)))
    }

    async fn publish_jetstream(
        &self,
        context: &jetstream::Context,
        subject: String,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, uuid::Uuid::new_v4().to_string().as_str());
        let mut backoff = MIN_BACKOFF;
        loop {
            let attempt =
                async { context.publish_with_headers(subject.clone(), headers.clone(), payload.clone()).await?.await };
            match attempt.await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    return Err(BusError::Refused(format!("no JetStream stream takes '{subject}'")))
                }
                Err(e) => {
                    warn!(%subject, error = %e, ?backoff, "JetStream publish not acknowledged; sending again.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn subscribe_durable(
        &self,
        stream: &stream::Stream,
        js: &JetStreamSettings,
        name: &str,
        subjects: Vec<String>,
        capacity: usize,
    ) -> Result<Subscription, BusError> {
        if name.is_empty() || name.contains(['.', '*', '>', ' ', '\t']) {
            return Err(BusError::Refused(format!(
                "'{name}' cannot name a JetStream durable consumer (no '.', '*', '>' or whitespace)"
            )));
        }
        let (tx, rx) = mpsc::channel(capacity);
        let several = subjects.len() > 1;
        for (i, subject) in subjects.into_iter().enumerate() {
            let durable = if several { format!("{name}-{}", i + 1) } else { name.to_owned() };
            let consumer: consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &durable,
                    consumer::pull::Config {
                        durable_name: Some(durable.clone()),
                        filter_subject: subject,
                        deliver_policy: consumer::DeliverPolicy::New,
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(js.ack_wait_secs.max(1)),
                        max_ack_pending: capacity as i64,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| BusError::Refused(format!("JetStream consumer '{durable}': {e}")))?;
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| BusError::Connection(format!("JetStream consumer '{durable}': {e}")))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        () = tx.closed() => return,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(message)) => {
                            if tx.send(jetstream_delivery(message)).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => warn!(consumer = %durable, error = %e, "JetStream consumer error; continuing."),
                        None => return,
                    }
                }
            });
        }
        Ok(Subscription::new(rx))
    }

    async fn subscribe_core(&self, subjects: Vec<String>, capacity: usize) -> Result<Subscription, BusError> {
        let mut subscribers = Vec::with_capacity(subjects.len());
        for subject in subjects {
            subscribers.push(
                self.client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| BusError::Connection(format!("NATS subscribe to '{subject}': {e}")))?,
            );
        }
        // The server must have the subscription before `subscribe` returns.
        self.client.flush().await.map_err(|e| BusError::Connection(format!("NATS: {e}")))?;
        let mut merged = futures_util::stream::select_all(subscribers);
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = tx.closed() => return,
                    next = merged.next() => next,
                };
                let Some(message) = next else { return };
                let delivery = Delivery::new(topic::from_nats_subject(&message.subject), message.payload);
                if tx.send(delivery).await.is_err() {
                    return;
                }
            }
        });
        Ok(Subscription::new(rx))
    }
}

fn jetstream_delivery(message: jetstream::Message) -> Delivery {
    let topic = topic::from_nats_subject(&message.subject);
    let payload = message.payload.clone();
    Delivery::with_acker(
        topic,
        payload,
        Box::new(move || {
            Box::pin(
                async move { message.ack().await.map_err(|e| BusError::Connection(format!("JetStream ack: {e}"))) },
            )
        }),
    )
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        if !topic::is_valid_topic(topic) {
            return Err(BusError::Refused(format!("'{topic}' is not a topic one can publish on")));
        }
        let max = self.client.server_info().max_payload;
        if payload.len() > max {
            return Err(BusError::Refused(format!(
                "a message of {} bytes exceeds the NATS server's max_payload of {max} bytes",
                payload.len()
            )));
        }
        let subject = topic::to_nats_subject(topic);
        match &self.jetstream {
            Some((context, _, _)) if self.in_stream(&subject) => {
                self.publish_jetstream(context, subject, payload).await
            }
            _ => {
                self.client
                    .publish(subject, payload)
                    .await
                    .map_err(|e| BusError::Connection(format!("NATS publish: {e}")))?;
                self.client.flush().await.map_err(|e| BusError::Connection(format!("NATS flush: {e}")))
            }
        }
    }

    async fn subscribe(&self, filters: &[String], options: SubscribeOptions) -> Result<Subscription, BusError> {
        if filters.is_empty() {
            return Err(BusError::Refused("a subscription needs at least one topic filter".to_owned()));
        }
        if let Some(bad) = filters.iter().find(|f| !topic::is_valid_filter(f)) {
            return Err(BusError::Refused(format!("'{bad}' is not a valid topic filter")));
        }
        let subjects: Vec<String> = filters.iter().map(|f| topic::to_nats_subject(f)).collect();
        let capacity = options.capacity.max(1);
        match (&options.durable, &self.jetstream) {
            (Some(name), Some((_, stream, js))) => {
                if let Some(outside) = subjects.iter().find(|s| !js.subjects.iter().any(|f| subject_covers(f, s))) {
                    return Err(BusError::Refused(format!(
                        "durable subscription to '{outside}' needs it inside JetStream stream '{}'",
                        js.stream
                    )));
                }
                self.subscribe_durable(stream, js, name, subjects, capacity).await
            }
            (Some(_), None) => {
                Err(BusError::Refused("durable subscriptions on NATS need JetStream, which is disabled".to_owned()))
            }
            (None, _) => self.subscribe_core(subjects, capacity).await,
        }
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// Whether every subject matching `filter` (a subject, or a filter with `*`/`>`) matches `stream_filter`.
fn subject_covers(stream_filter: &str, filter: &str) -> bool {
    let mut f = stream_filter.split('.');
    let mut s = filter.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_subjects_cover_what_they_should() {
        assert!(subject_covers("edgex.>", "edgex.events.device.a"));
        assert!(!subject_covers("edgex.>", "edgex"));
        assert!(subject_covers("edgex.>", "edgex.events.>"));
        assert!(subject_covers("edgex.*.x", "edgex.*.x"));
        assert!(!subject_covers("edgex.*", "edgex.>"));
        assert!(!subject_covers("edgex.>", "other.>"));
    }
}
