//! The `core-metadata` binary: core-metadata on its own.

fn main() -> anyhow::Result<()> {
    oxedge_runtime::main(oxedge_core_metadata::BINARY, oxedge_core_metadata::run)
}
