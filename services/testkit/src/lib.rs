//! Test support shared by every crate's integration tests: real servers, found or started.
//!
//! Tests never mock a server that can run here. [`redis`] finds a Redis server
//! (`OXEDGE_TEST_REDIS_URL`, else the default port) or starts `redis-server` on a free
//! loopback port, shared by the tests of one binary while any of them runs.

pub mod redis;
