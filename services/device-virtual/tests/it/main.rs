//! The integration tests of oxedge-device-virtual, one module per area, linked as one test
//! binary (`cargo test -p oxedge-device-virtual --test it`) instead of one binary per file.

mod driver;
mod service;
