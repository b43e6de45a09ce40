//! The integration tests of oxedge-core-data, one module per area, linked as one test binary
//! (`cargo test -p oxedge-core-data --test it`) instead of one binary per file.

mod common;

mod api;
mod crash;
mod redis_later;
