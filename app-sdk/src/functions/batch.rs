//! `Batch`: holds items and releases them together, by count (`bycount`: when
//! `BatchThreshold` items are held), by time (`bytime`: every `TimeInterval`, whatever is
//! held), or both (`bytimecount`: whichever comes first), as EdgeX's `BatchByCount`,
//! `BatchByTime` and `BatchByTimeAndCount`.
//!
//! The release is a [`Data::Batch`] of the items as they came (events stay events), or with
//! `MergeOnSend` one payload: the items' bytes one after the other when all are bytes of one
//! media type that is not JSON (lines of `ToLineProtocol`, as EdgeX merges them into one
//! `[]byte`), else one JSON array ([`Data::to_payload`]). A held item's bus deliveries
//! and export confirmations move out of its context into the batch, and into the context that
//! releases the batch; so a message is acknowledged only once the batch it is in has been
//! exported. Deliveries held by a batch count against the trigger's window of messages in
//! flight: a by-time batch larger than that window is released by its timer, not by count.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use oxedge_bus::Delivery;
use serde::Deserialize;

use super::params::{de, ParameterError};
use crate::context::Confirmation;
use crate::{Context, Data, Function, FunctionError};

/// When a batch is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// When this many items are held.
    ByCount(usize),
    /// At this interval, whatever is held.
    ByTime(Duration),
    /// At this interval, or earlier when this many items are held.
    ByTimeAndCount(Duration, usize),
}

/// `Batch`'s parameters, with EdgeX's names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// `bycount`, `bytime` or `bytimecount` (any case).
    #[serde(rename = "Mode", deserialize_with = "de::text")]
    pub mode: String,
    /// How many items release a batch (`bycount`, `bytimecount`).
    #[serde(rename = "BatchThreshold", default, deserialize_with = "de::optional_number")]
    pub batch_threshold: Option<usize>,
    /// How often a batch is released (`bytime`, `bytimecount`), a Go duration (`30s`).
    #[serde(rename = "TimeInterval", default, deserialize_with = "de::optional_duration")]
    pub time_interval: Option<Duration>,
    /// Accepted for EdgeX configurations: items keep their kind here, so events stay events
    /// whatever it says.
    #[serde(rename = "IsEventData", default, deserialize_with = "de::flag")]
    pub is_event_data: bool,
    /// Releases one JSON array as bytes instead of a [`Data::Batch`].
    #[serde(rename = "MergeOnSend", default, deserialize_with = "de::flag")]
    pub merge_on_send: bool,
}

impl BatchSettings {
    /// The mode these settings describe; a missing or zero threshold or interval is an error
    /// naming it.
    pub fn mode(&self) -> Result<BatchMode, ParameterError> {
        let threshold = || match self.batch_threshold {
            Some(n) if n > 0 => Ok(n),
            Some(_) => Err(ParameterError::new("BatchThreshold", "must be at least 1")),
            None => Err(ParameterError::new("BatchThreshold", format!("missing (Mode is {})", self.mode))),
        };
        let interval = || match self.time_interval {
            Some(d) if !d.is_zero() => Ok(d),
            Some(_) => Err(ParameterError::new("TimeInterval", "must be longer than zero")),
            None => Err(ParameterError::new("TimeInterval", format!("missing (Mode is {})", self.mode))),
        };
        match self.mode.to_ascii_lowercase().as_str() {
            "bycount" => Ok(BatchMode::ByCount(threshold()?)),
            "bytime" => Ok(BatchMode::ByTime(interval()?)),
            "bytimecount" => Ok(BatchMode::ByTimeAndCount(interval()?, threshold()?)),
            other => Err(ParameterError::new("Mode", format!("'{other}' is not bycount, bytime or bytimecount"))),
        }
    }
}

#[derive(Default)]
struct Held {
    items: Vec<Data>,
    deliveries: Vec<Delivery>,
    confirmations: Vec<Confirmation>,
}

/// Holds items and releases them together.
pub struct Batch {
    mode: BatchMode,
    merge_on_send: bool,
    held: Mutex<Held>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("mode", &self.mode).field("merge_on_send", &self.merge_on_send).finish()
    }
}

impl Batch {
    /// A batch released as `mode` says; `merge_on_send` releases one payload (see the module).
    pub fn new(mode: BatchMode, merge_on_send: bool) -> Self {
        Self { mode, merge_on_send, held: Mutex::new(Held::default()) }
    }

    /// A batch from EdgeX's parameters.
    pub fn from_settings(settings: &BatchSettings) -> Result<Self, ParameterError> {
        Ok(Self::new(settings.mode()?, settings.merge_on_send))
    }

    fn threshold(&self) -> Option<usize> {
        match self.mode {
            BatchMode::ByCount(n) | BatchMode::ByTimeAndCount(_, n) => Some(n),
            BatchMode::ByTime(_) => None,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands what is held to `ctx`: its deliveries and confirmations, and the items as data.
    fn release(&self, held: Held, ctx: &Context) -> Result<Option<Data>, FunctionError> {
        if held.items.is_empty() {
            return Ok(None);
        }
        ctx.add_deliveries(held.deliveries);
        for confirmation in held.confirmations {
            ctx.add_confirmation(confirmation);
        }
        if self.merge_on_send {
            if let Some(merged) = concatenated(&held.items) {
                return Ok(Some(merged));
            }
        }
        let batch = Data::Batch(held.items);
        if self.merge_on_send {
            let (bytes, content_type) = batch.to_payload()?;
            return Ok(Some(Data::Bytes { bytes, content_type }));
        }
        Ok(Some(batch))
    }
}

/// `items` one after the other when all are bytes of one media type that is not JSON.
fn concatenated(items: &[Data]) -> Option<Data> {
    let Some(Data::Bytes { content_type, .. }) = items.first() else { return None };
    if crate::data::is_json(content_type) {
        return None;
    }
    let mut merged = Vec::new();
    for item in items {
        match item {
            Data::Bytes { bytes, content_type: same } if same == content_type => merged.extend_from_slice(bytes),
            _ => return None,
        }
    }
    Some(Data::Bytes { bytes: merged.into(), content_type: content_type.clone() })
}

#[async_trait]
impl Function for Batch {
    fn name(&self) -> &str {
        "Batch"
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let full = {
            let mut held = self.held();
            held.items.push(data);
            held.deliveries.extend(ctx.take_deliveries());
            held.confirmations.extend(ctx.take_confirmations());
            match self.threshold() {
                Some(n) if held.items.len() >= n => Some(std::mem::take(&mut *held)),
                _ => None,
            }
        };
        match full {
            Some(held) => self.release(held, ctx),
            None => Ok(None),
        }
    }

    fn flush_every(&self) -> Option<Duration> {
        match self.mode {
            BatchMode::ByTime(every) | BatchMode::ByTimeAndCount(every, _) => Some(every),
            BatchMode::ByCount(_) => None,
        }
    }

    async fn flush(&self, ctx: &Context) -> Result<Option<Data>, FunctionError> {
        let held = std::mem::take(&mut *self.held());
        self.release(held, ctx)
    }
}
