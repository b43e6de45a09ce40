//! The integration tests of oxedge-app-service-configurable, one module per area, linked as
//! one test binary (`cargo test -p oxedge-app-service-configurable --test it`) instead of one
//! binary per file.

mod bad_config;
mod profiles;
mod templates;
