//! The built-in pipeline functions: filters, transforms, compression, encryption, batches,
//! tags, JSON conversions and response data.
