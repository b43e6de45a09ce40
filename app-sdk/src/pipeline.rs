//! [`Pipeline`]: an ordered list of functions bound to topics, and the runner that feeds it.

use std::sync::Arc;

use crate::Function;

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
