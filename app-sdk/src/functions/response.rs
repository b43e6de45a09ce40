//! `SetResponseData`: makes the input the data the trigger answers with (the HTTP trigger's
//! response body), as EdgeX's `SetResponseData`, and passes the input on unchanged.

use async_trait::async_trait;
use serde::Deserialize;

use super::params::de;
use crate::{Context, Data, Function, FunctionError};

/// `SetResponseData`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetResponseDataSettings {
    /// The response's media type; empty: the input's own (`application/json` for an event).
    #[serde(rename = "ResponseContentType", default, deserialize_with = "de::text")]
    pub response_content_type: String,
}

/// Sets the response data to its input.
#[derive(Debug, Clone, Default)]
pub struct SetResponseData {
    content_type: Option<String>,
}

impl SetResponseData {
    /// From its settings.
    pub fn new(settings: SetResponseDataSettings) -> Self {
        let content_type = Some(settings.response_content_type).filter(|ct| !ct.is_empty());
        Self { content_type }
    }
}

#[async_trait]
impl Function for SetResponseData {
    fn name(&self) -> &str {
        "SetResponseData"
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let (bytes, content_type) = data.to_payload()?;
        ctx.set_response(bytes, self.content_type.clone().unwrap_or(content_type));
        Ok(Some(data))
    }
}
