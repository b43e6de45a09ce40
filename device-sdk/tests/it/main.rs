//! The integration tests of oxedge-device-sdk, one module per area, linked as one test
//! binary (`cargo test -p oxedge-device-sdk --test it`) instead of one binary per file.
//! `commands_*` share `commands_common`, `runtime_*` share `runtime_support` (which
//! device-ble's tests include too, by path). `commands_autoevent_scale` is a measurement
//! (ignored; see its docs).

mod commands_common;
mod runtime_support;

mod commands_autoevent;
mod commands_autoevent_scale;
mod commands_bus;
mod commands_health;
mod commands_rest;
mod runtime_cache;
mod runtime_driver_health;
mod runtime_provision;
mod runtime_routes;
