//! The built-in pipeline functions: filters, JSONLogic rules, transforms, InfluxDB line protocol,
//! compression, encryption, batches, tags, JSON conversions, wrapping raw input into events and
//! response data — with EdgeX's names, parameters and behaviour.
//!
//! Each is a struct built from a typed settings struct (serde, with EdgeX's parameter names,
//! so that [`params::from_parameters`] reads it from a configuration) and implements
//! [`Function`]. [`build`] makes one from its EdgeX name and parameters, as
//! app-service-configurable does.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::{Data, Function};

pub mod batch;
pub mod compress;
pub mod encrypt;
pub mod filter;
pub mod json;
pub mod jsonlogic;
pub mod lineprotocol;
pub mod params;
pub mod response;
pub mod tags;
pub mod transform;
pub mod wrap;

pub use batch::{Batch, BatchMode, BatchSettings};
pub use compress::{Compress, CompressSettings};
pub use encrypt::{Encrypt, EncryptSettings};
pub use filter::{Filter, FilterBy, FilterSettings};
pub use json::{ToEvent, ToJsonValue};
pub use jsonlogic::{JsonLogic, JsonLogicSettings};
pub use lineprotocol::{ToLineProtocol, ToLineProtocolSettings};
pub use params::{from_parameters, ParameterError};
pub use response::{SetResponseData, SetResponseDataSettings};
pub use tags::{AddTags, AddTagsSettings};
pub use transform::{Transform, TransformSettings};
pub use wrap::{WrapIntoEvent, WrapIntoEventSettings};

/// The names [`build`] knows, as EdgeX's configurable pipelines spell them (plus Oxedge's
/// `ToJsonValue` and `ToEvent`).
pub const NAMES: &[&str] = &[
    "FilterByProfileName",
    "FilterByDeviceName",
    "FilterBySourceName",
    "FilterByResourceName",
    "Transform",
    "Compress",
    "Encrypt",
    "Batch",
    "AddTags",
    "SetResponseData",
    "ToJsonValue",
    "ToEvent",
    "WrapIntoEvent",
    "JSONLogic",
    "ToLineProtocol",
];

/// Builds the built-in function `name` (one of [`NAMES`]) from its EdgeX `parameters`;
/// `None` when `name` is not a built-in. A problem names the parameter.
pub fn build(name: &str, parameters: &Map<String, Json>) -> Option<Result<Arc<dyn Function>, ParameterError>> {
    fn boxed<F: Function>(function: Result<F, ParameterError>) -> Result<Arc<dyn Function>, ParameterError> {
        function.map(|f| Arc::new(f) as Arc<dyn Function>)
    }
    let filter = |by| boxed(FilterSettings::from_parameters(by, parameters).and_then(|s| Filter::new(by, s)));
    let none = || match parameters.keys().next() {
        Some(key) => Err(ParameterError::new(key.clone(), "unknown parameter (this function takes none)")),
        None => Ok(()),
    };
    Some(match name {
        "FilterByProfileName" => filter(FilterBy::ProfileName),
        "FilterByDeviceName" => filter(FilterBy::DeviceName),
        "FilterBySourceName" => filter(FilterBy::SourceName),
        "FilterByResourceName" => filter(FilterBy::ResourceName),
        "Transform" => boxed(from_parameters(parameters).and_then(|s| Transform::from_settings(&s))),
        "Compress" => boxed(from_parameters(parameters).and_then(|s| Compress::from_settings(&s))),
        "Encrypt" => boxed(from_parameters(parameters).and_then(|s| Encrypt::from_settings(&s))),
        "Batch" => boxed(from_parameters(parameters).and_then(|s| Batch::from_settings(&s))),
        "AddTags" => boxed(from_parameters(parameters).and_then(AddTags::from_settings)),
        "SetResponseData" => boxed(from_parameters(parameters).map(SetResponseData::new)),
        "ToJsonValue" => boxed(none().map(|()| ToJsonValue)),
        "ToEvent" => boxed(none().map(|()| ToEvent)),
        "WrapIntoEvent" => boxed(from_parameters(parameters).and_then(WrapIntoEvent::new)),
        "JSONLogic" => boxed(from_parameters(parameters).and_then(|s| JsonLogic::from_settings(&s))),
        "ToLineProtocol" => boxed(from_parameters(parameters).and_then(|s| ToLineProtocol::from_settings(&s))),
        _ => return None,
    })
}

/// What kind of data `data` is, for error messages.
pub(crate) fn kind(data: &Data) -> String {
    match data {
        Data::Event(_) => "an event".to_owned(),
        Data::Batch(items) => format!("a batch of {}", items.len()),
        Data::Bytes { content_type, .. } => format!("bytes ({content_type})"),
        Data::Json(_) => "a JSON value".to_owned(),
    }
}
