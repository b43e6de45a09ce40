//! The integration tests of oxedge-core-metadata, one module per area, linked as one test
//! binary (`cargo test -p oxedge-core-metadata --test it`) instead of one binary per file.

mod common;

mod api;
mod bad_input;
mod redis_later;
