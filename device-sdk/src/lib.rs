//! The Oxedge device SDK: write an EdgeX-compatible device service by implementing
//! [`ProtocolDriver`] and calling [`run`].
//!
//! The SDK registers the service and its profiles and devices with core-metadata, keeps
//! them cached and current from core-metadata's system events, runs auto events, serves
//! the EdgeX v3 device service API and the command requests arriving on the message bus,
//! converts raw values to readings per profile, and publishes events on the bus.

#![warn(missing_docs)]

mod autoevent;
mod bus_commands;
mod cache;
mod command;
pub mod config;
pub mod driver;
mod health;
mod metrics;
mod routes;
mod service;
pub mod value;

pub use driver::{CommandRequest, CommandValue, Discovered, DriverError, DriverResult, ProtocolDriver, Protocols, Value};

/// The handle a driver keeps to push asynchronous readings and discovered devices.
#[derive(Clone)]
pub struct Sdk {}
