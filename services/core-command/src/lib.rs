//! core-command: the EdgeX v3 command API.
