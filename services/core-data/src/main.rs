//! The `core-data` binary: core-data on its own.

fn main() -> anyhow::Result<()> {
    oxedge_runtime::main(oxedge_core_data::BINARY, oxedge_core_data::run)
}
