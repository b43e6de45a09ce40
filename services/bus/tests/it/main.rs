//! The integration tests of oxedge-bus, one module per backend, linked as one test binary
//! (`cargo test -p oxedge-bus --test it`) instead of one binary per file.

mod suite;

// The embedded broker is a feature (the all-in-one turns it on; a workspace build has it).
#[cfg(feature = "embedded")]
mod embedded;
mod mqtt;
mod nats;
