//! Test support shared by every crate's integration tests: real servers, found or started.
//!
//! Tests never mock a server that can run here. [`redis`] finds a Redis server
//! (`OXEDGE_TEST_REDIS_URL`, else the default port) or starts `redis-server` on a free
//! loopback port, shared by the tests of one binary while any of them runs. [`mosquitto`]
//! and [`nats`] do the same for MQTT and NATS (`OXEDGE_TEST_MQTT_URL`,
//! `OXEDGE_TEST_NATS_URL`), and also start a private broker for a test that stops and
//! restarts it ([`ServerProcess`]). [`python`] gives the interpreter that has the Python
//! test peers (pymodbus, paho-mqtt).

pub mod http;
pub mod mosquitto;
pub mod nats;
mod process;
pub mod python;
pub mod redis;

pub use process::ServerProcess;

/// A TCP port on loopback that was free a moment ago, for a process under test to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}
