//! The EdgeX v3 device service REST API: `/api/v3/device/name/{name}/{command}`.
