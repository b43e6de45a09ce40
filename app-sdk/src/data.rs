//! [`Data`]: what flows from one pipeline function to the next.

use bytes::Bytes;
use oxedge_contracts::Event;
use serde_json::Value as Json;

/// What a pipeline function takes and returns. A trigger starts a pipeline with an
/// [`Data::Event`] (or [`Data::Bytes`] when the message is not an event and the pipeline
/// takes raw input); transforms turn it into bytes or JSON, a batch into [`Data::Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// An EdgeX event.
    Event(Box<Event>),
    /// Several items, released together by a batch.
    Batch(Vec<Data>),
    /// Serialized data (after a transform, compression or encryption) and its media type.
    Bytes {
        /// The bytes.
        bytes: Bytes,
        /// Their media type, e.g. `application/json`, `application/xml`, `application/octet-stream`.
        content_type: String,
    },
    /// Any JSON value (after a JSON conversion, or from a custom function).
    Json(Json),
}
