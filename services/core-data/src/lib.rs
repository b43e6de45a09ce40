//! core-data: persists events and readings from the bus and serves them over the EdgeX v3 API.

pub mod store;
