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

pub mod config;
pub mod context;
pub mod data;
pub mod export;
pub mod forward;
pub mod function;
pub mod functions;
pub mod pipeline;
pub mod secrets;
pub mod trigger;

pub use context::Context;
pub use data::Data;
pub use function::{from_fn, Function, FunctionError};
pub use pipeline::Pipeline;
