//! Devices' operating state: DOWN after repeated driver failures, UP again on success.
