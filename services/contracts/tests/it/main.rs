//! The integration tests of oxedge-contracts, one module per area, linked as one test binary
//! (`cargo test -p oxedge-contracts --test it`) instead of one binary per file.

mod hostile_input;
mod reference_examples;
mod reference_profiles;
