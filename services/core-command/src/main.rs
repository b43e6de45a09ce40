//! The `core-command` binary: core-command on its own.

fn main() -> anyhow::Result<()> {
    oxedge_runtime::main(oxedge_core_command::BINARY, oxedge_core_command::run)
}
