//! The integration tests of oxedge-runtime, one module per area, linked as one test binary
//! (`cargo test -p oxedge-runtime --test it`) instead of one binary per file.

mod bus_startup;
mod config;
mod endpoints;
