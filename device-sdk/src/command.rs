//! Executing a command (a device command or a device resource) on a device: reads become
//! events, writes are checked against the profile before they reach the driver.
