//! The integration tests of oxedge-device-modbus, one module per area, linked as one test
//! binary (`cargo test -p oxedge-device-modbus --test it`) instead of one binary per file.
//! `bench` holds the measurements (ignored; see its docs).

mod support;

mod bench;
mod driver;
mod service;
