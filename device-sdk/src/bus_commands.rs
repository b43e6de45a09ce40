//! Command requests arriving on the message bus (EdgeX 4's core-command → device service).
