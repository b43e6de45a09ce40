//! An app service's configuration: defaults in code, a YAML file, `OXEDGE_<SECTION>_<KEY>`
//! environment overrides (see [`oxedge_runtime::config::load`]).
