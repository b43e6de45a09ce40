//! device-virtual: simulated devices.
