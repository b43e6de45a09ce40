//! [`Function`]: one step of a pipeline, as a trait impl or an async closure ([`from_fn`]).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

use crate::{Context, Data};

/// Why a function stopped the message it was given. The pipeline logs it with the
/// function's name and goes on with the next message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FunctionError {
    /// What went wrong, naming the field or parameter.
    pub message: String,
}

impl FunctionError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// One step of a pipeline.
#[async_trait]
pub trait Function: Send + Sync + 'static {
    /// The name logs and metrics show (`FilterByDeviceName`, `MQTTExport`, a custom name).
    fn name(&self) -> &str;

    /// Works on `data`: `Ok(Some(next))` goes on with `next`, `Ok(None)` ends the pipeline
    /// for this message (filtered out, or held by a batch), `Err` stops this message only.
    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError>;

    /// For functions that hold data across calls (a batch by time): how often the pipeline
    /// calls [`flush`](Self::flush). `None`: never.
    fn flush_every(&self) -> Option<Duration> {
        None
    }

    /// Releases held data; the pipeline goes on with it from the next function, in `ctx`.
    async fn flush(&self, _ctx: &Context) -> Result<Option<Data>, FunctionError> {
        Ok(None)
    }
}

/// A function made from an async closure taking a clone of the context and the data:
///
/// ```
/// use oxedge_app_sdk::{from_fn, Data};
/// let uppercase_names = from_fn("UppercaseDeviceName", |_ctx, data| async move {
///     Ok(match data {
///         Data::Event(mut event) => {
///             event.device_name = event.device_name.to_uppercase();
///             Some(Data::Event(event))
///         }
///         other => Some(other),
///     })
/// });
/// # let _ = uppercase_names;
/// ```
pub fn from_fn<F, Fut>(name: impl Into<String>, f: F) -> FnFunction<F>
where
    F: Fn(Context, Data) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Data>, FunctionError>> + Send + 'static,
{
    FnFunction { name: name.into(), f }
}

/// See [`from_fn`].
pub struct FnFunction<F> {
    name: String,
    f: F,
}

#[async_trait]
impl<F, Fut> Function for FnFunction<F>
where
    F: Fn(Context, Data) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Data>, FunctionError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        (self.f)(ctx.clone(), data).await
    }
}
