//! The integration tests of oxedge-device-ble that can share a process, linked as one test
//! binary (`cargo test -p oxedge-device-ble --test it`). `tests/no_adapter.rs` stays a binary
//! of its own: it sets an environment variable.

mod fake;
#[path = "../../../../device-sdk/tests/it/runtime_support/mod.rs"]
mod runtime_support;

mod service;
