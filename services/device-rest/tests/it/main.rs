//! The integration tests of oxedge-device-rest, one module per area, linked as one test
//! binary (`cargo test -p oxedge-device-rest --test it`) instead of one binary per file.
//! `throughput` holds the measurements (ignored; see its docs).

mod common;

mod commands;
mod push;
mod throughput;
