//! app-service-configurable: builds app-sdk pipelines from a YAML profile, with no code.

/// The service's default HTTP port (EdgeX's app services start at 59700).
pub const DEFAULT_PORT: u16 = 59700;
