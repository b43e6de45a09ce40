//! The integration tests of oxedge-device-mqtt, one module per area, linked as one test
//! binary (`cargo test -p oxedge-device-mqtt --test it`) instead of one binary per file.
//! `throughput` is a measurement (ignored; see its docs).

mod common;

mod persistence;
mod service;
mod throughput;
