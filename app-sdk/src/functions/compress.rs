//! `Compress`: gzip or zlib, as EdgeX's `CompressWithGZIP` / `CompressWithZLIB`: the input's
//! payload (see [`Data::to_payload`]) compressed, then base64 (standard alphabet, padded) as
//! `text/plain`, which is what EdgeX sends.

use std::io::Write as _;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression as Level;
use serde::Deserialize;

use super::params::{de, ParameterError};
use crate::{Context, Data, Function, FunctionError};

/// `text/plain`: what compression and encryption produce (base64 text), as EdgeX sets it.
pub const CONTENT_TYPE_TEXT: &str = "text/plain";

/// A compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// gzip (RFC 1952).
    Gzip,
    /// zlib (RFC 1950).
    Zlib,
}

/// `Compress`'s parameters: `Algorithm` is `gzip` or `zlib` (any case).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressSettings {
    /// `gzip` or `zlib`.
    #[serde(rename = "Algorithm", deserialize_with = "de::text")]
    pub algorithm: String,
}

/// Compresses its input and writes it as base64 text.
#[derive(Debug, Clone)]
pub struct Compress {
    algorithm: Algorithm,
}

impl Compress {
    /// Compression with `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        Self { algorithm }
    }

    /// Compression from EdgeX's parameters.
    pub fn from_settings(settings: &CompressSettings) -> Result<Self, ParameterError> {
        match settings.algorithm.to_ascii_lowercase().as_str() {
            "gzip" => Ok(Self::new(Algorithm::Gzip)),
            "zlib" => Ok(Self::new(Algorithm::Zlib)),
            other => Err(ParameterError::new("Algorithm", format!("'{other}' is not gzip or zlib"))),
        }
    }

    fn compress(&self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        let out = Vec::with_capacity(input.len() / 2 + 64);
        match self.algorithm {
            Algorithm::Gzip => {
                let mut encoder = GzEncoder::new(out, Level::default());
                encoder.write_all(input)?;
                encoder.finish()
            }
            Algorithm::Zlib => {
                let mut encoder = ZlibEncoder::new(out, Level::default());
                encoder.write_all(input)?;
                encoder.finish()
            }
        }
    }
}

#[async_trait]
impl Function for Compress {
    fn name(&self) -> &str {
        match self.algorithm {
            Algorithm::Gzip => "CompressWithGZIP",
            Algorithm::Zlib => "CompressWithZLIB",
        }
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let (payload, _) = data.to_payload()?;
        let compressed = self
            .compress(&payload)
            .map_err(|e| FunctionError::new(format!("{}: cannot compress: {e}", self.name())))?;
        let text = base64::engine::general_purpose::STANDARD.encode(compressed);
        Ok(Some(Data::Bytes { bytes: Bytes::from(text), content_type: CONTENT_TYPE_TEXT.to_owned() }))
    }
}
