//! device-virtual: simulated devices of every EdgeX value type, for demos, tests and load.
//!
//! [`VirtualDriver`] is the protocol driver; `device-virtual` (src/main.rs) runs it as a
//! device service on port 59900, and `oxedge run` embeds it. Each resource behaves as its
//! profile's attributes say ([`simulation`]); EdgeX's own device-virtual profiles work
//! unchanged, with their `EnableRandomization_*` switches. Profiles, devices, the load
//! generator's provision watcher and a configuration are in `profiles/device-virtual/`.

pub mod driver;
pub mod files;
pub mod simulation;

pub use driver::{Settings, VirtualDriver, LOAD_PREFIX};

/// The service's name, as EdgeX's.
pub const SERVICE_NAME: &str = "device-virtual";

/// The default port, EdgeX's.
pub const DEFAULT_PORT: u16 = 59900;
