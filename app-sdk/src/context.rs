//! [`Context`]: what a pipeline function knows about the message it works on, and what it
//! leaves for the trigger (response data, acknowledgement).
//!
//! A context is cheap to clone (shared inside), so a custom function written as an async
//! closure can move a clone into its future.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use oxedge_bus::Delivery;
use tokio::sync::oneshot;

use crate::function::FunctionError;
use crate::secrets::Secrets;

/// A confirmation that an export has taken responsibility for data: `Ok` once it is
/// delivered or durably stored for retry, `Err` if it was given up (drop policy).
pub type Confirmation = oneshot::Receiver<Result<(), String>>;

/// What a pipeline function knows about the message it works on.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    correlation_id: String,
    pipeline_id: String,
    secrets: Secrets,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    values: BTreeMap<String, String>,
    response: Option<(Bytes, String)>,
    deliveries: Vec<Delivery>,
    confirmations: Vec<Confirmation>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("correlation_id", &self.inner.correlation_id)
            .field("pipeline_id", &self.inner.pipeline_id)
            .finish()
    }
}

impl Context {
    /// A context for one message of the pipeline `pipeline_id`.
    pub fn new(correlation_id: impl Into<String>, pipeline_id: impl Into<String>, secrets: Secrets) -> Self {
        Self {
            inner: Arc::new(Inner {
                correlation_id: correlation_id.into(),
                pipeline_id: pipeline_id.into(),
                secrets,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A function that panicked while holding the lock left nothing half-written that
        // matters more than carrying on.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The message's correlation id (from the bus envelope, or new).
    pub fn correlation_id(&self) -> &str {
        &self.inner.correlation_id
    }

    /// The id of the pipeline running.
    pub fn pipeline_id(&self) -> &str {
        &self.inner.pipeline_id
    }

    /// The service's secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// A context value (`receivedtopic`, `devicename`, `profilename`, `sourcename`, or one a
    /// function set); keys are matched without regard to case, as EdgeX does.
    pub fn value(&self, key: &str) -> Option<String> {
        self.state().values.get(&key.to_ascii_lowercase()).cloned()
    }

    /// Sets a context value for the functions after this one and for templates.
    pub fn set_value(&self, key: &str, value: impl Into<String>) {
        self.state().values.insert(key.to_ascii_lowercase(), value.into());
    }

    /// Replaces each `{key}` in `template` by the context value `key` (any case):
    /// `factory/{deviceName}/{sourceName}`. A key with no value is an error naming it.
    pub fn apply_template(&self, template: &str) -> Result<String, FunctionError> {
        let state = self.state();
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| FunctionError::new(format!("template {template:?}: '{{' without '}}'")))?;
            let key = &after[..close];
            let value = state.values.get(&key.to_ascii_lowercase()).ok_or_else(|| {
                FunctionError::new(format!("template {template:?}: no value for {{{key}}} in this message"))
            })?;
            out.push_str(value);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Sets the data the trigger answers with (HTTP trigger: the response body).
    pub fn set_response(&self, bytes: Bytes, content_type: impl Into<String>) {
        self.state().response = Some((bytes, content_type.into()));
    }

    /// Takes the response data set by a function, if any.
    pub fn take_response(&self) -> Option<(Bytes, String)> {
        self.state().response.take()
    }

    /// Makes this context answer for acknowledging `delivery` once the pipeline is done.
    pub fn hold_delivery(&self, delivery: Delivery) {
        self.state().deliveries.push(delivery);
    }

    /// Takes the deliveries this context answers for (a batch moves them to the context
    /// that releases the batch).
    pub fn take_deliveries(&self) -> Vec<Delivery> {
        std::mem::take(&mut self.state().deliveries)
    }

    /// Adds deliveries taken from other contexts.
    pub fn add_deliveries(&self, deliveries: Vec<Delivery>) {
        self.state().deliveries.extend(deliveries);
    }

    /// Tells the trigger not to acknowledge this message before `confirmation` resolves
    /// (an export hands the data over without waiting for the round trip).
    pub fn add_confirmation(&self, confirmation: Confirmation) {
        self.state().confirmations.push(confirmation);
    }

    /// Takes the confirmations to wait for.
    pub fn take_confirmations(&self) -> Vec<Confirmation> {
        std::mem::take(&mut self.state().confirmations)
    }
}
