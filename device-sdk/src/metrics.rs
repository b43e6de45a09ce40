//! The device service's metrics: readings, command latency, driver errors.
