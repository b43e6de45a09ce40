//! How a device is reached (its `modbus-tcp` or `modbus-rtu` protocol properties), and the
//! connections to its endpoint.
//!
//! Devices that share an endpoint share one connection: a Modbus TCP server and unit
//! (`host:port` + `UnitID`), or a serial line (every unit on it). A connection carries one
//! request at a time (many devices, pymodbus among them, answer only the first of several
//! requests in flight), is opened on first use and kept, closed after `IdleTimeout` without
//! use, and opened again after an error. While it cannot be opened, attempts are spaced
//! by a backoff doubling from 100 ms up to the driver's `max_backoff`; in between, requests
//! fail at once with the last connection error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use oxedge_contracts::validate::parse_duration;
use oxedge_device_sdk::{DriverError, Protocols};
use serde_json::Value as Json;
use tokio::sync::Mutex as AsyncMutex;
use tokio_modbus::client::{Client, Context, Reader, Writer};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

/// EdgeX's protocol name of Modbus TCP.
pub const PROTOCOL_TCP: &str = "modbus-tcp";
/// EdgeX's protocol name of Modbus RTU.
pub const PROTOCOL_RTU: &str = "modbus-rtu";

/// The request timeout when a device has no `Timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait after a failed connection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A serial line's settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Serial {
    /// The serial device (`/dev/ttyUSB0`).
    pub path: String,
    /// Bits per second.
    pub baud_rate: u32,
    /// 5 to 8.
    pub data_bits: u8,
    /// 1 or 2.
    pub stop_bits: u8,
    /// `N`, `O` or `E`.
    pub parity: char,
}

/// Where a device is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Modbus TCP server.
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A serial line (Modbus RTU).
    Rtu(Serial),
}

/// A device's protocol properties, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Where it is.
    pub endpoint: Endpoint,
    /// Its unit (slave) id.
    pub unit: u8,
    /// How long one request (or opening the connection) may take.
    pub timeout: Duration,
    /// How long the connection may stay unused before it is closed; zero: never.
    pub idle_timeout: Duration,
}

impl Target {
    /// Reads a device's protocol properties as EdgeX's device-modbus does; the error names
    /// the protocol and the property.
    pub fn parse(protocols: &Protocols) -> Result<Target, String> {
        let (tcp, rtu) = (protocols.get(PROTOCOL_TCP), protocols.get(PROTOCOL_RTU));
        let (protocol, props) = match (tcp, rtu) {
            (Some(_), Some(_)) => {
                return Err(format!("protocols: both {PROTOCOL_TCP} and {PROTOCOL_RTU} are given; choose one"))
            }
            (None, None) => return Err(format!("protocols: neither {PROTOCOL_TCP} nor {PROTOCOL_RTU} is given")),
            (Some(p), None) => (PROTOCOL_TCP, p),
            (None, Some(p)) => (PROTOCOL_RTU, p),
        };
        let get = |key: &str| props.get(key).filter(|v| !matches!(v, Json::Null) && v.as_str() != Some(""));
        let bad =
            |key: &str, want: &str| format!("protocol {protocol}, property {key}: {} is not {want}", show(get(key)));
        let number = |key: &str, lo: u64, hi: u64, default: Option<u64>| -> Result<u64, String> {
            let want = format!("a number from {lo} to {hi}");
            match get(key) {
                None => default.ok_or_else(|| format!("protocol {protocol}, property {key} is missing")),
                Some(v) => as_u64(v).filter(|n| (lo..=hi).contains(n)).ok_or_else(|| bad(key, &want)),
            }
        };
        let duration = |key: &str, default: Duration| -> Result<Duration, String> {
            match get(key) {
                None => Ok(default),
                Some(v) => as_duration(v).ok_or_else(|| bad(key, "a number of seconds or a duration such as 500ms")),
            }
        };
        let address = match get("Address") {
            Some(Json::String(s)) => s.trim().to_owned(),
            Some(_) => return Err(bad("Address", "a string")),
            None => return Err(format!("protocol {protocol}, property Address is missing")),
        };
        let unit = number("UnitID", 0, 255, None)? as u8;
        let endpoint = if protocol == PROTOCOL_TCP {
            Endpoint::Tcp { host: address, port: number("Port", 1, 65535, Some(502))? as u16 }
        } else {
            // EdgeX once took "/dev/ttyS0,19200,8,1,N": the path is what comes before a comma.
            let path = address.split(',').next().unwrap_or_default().trim().to_owned();
            let parity = match get("Parity").map(|v| v.as_str().map(str::trim)) {
                None => 'N',
                Some(Some("N")) => 'N',
                Some(Some("O")) => 'O',
                Some(Some("E")) => 'E',
                Some(_) => return Err(bad("Parity", "N (none), O (odd) or E (even)")),
            };
            Endpoint::Rtu(Serial {
                path,
                baud_rate: number("BaudRate", 1, 4_000_000, None)? as u32,
                data_bits: number("DataBits", 5, 8, Some(8))? as u8,
                stop_bits: number("StopBits", 1, 2, Some(1))? as u8,
                parity,
            })
        };
        let timeout = duration("Timeout", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(bad("Timeout", "longer than zero"));
        }
        Ok(Target { endpoint, unit, timeout, idle_timeout: duration("IdleTimeout", Duration::ZERO)? })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.endpoint {
            Endpoint::Tcp { host, port } => write!(f, "{PROTOCOL_TCP} {host}:{port} unit {}", self.unit),
            Endpoint::Rtu(serial) => write!(f, "{PROTOCOL_RTU} {} unit {}", serial.path, self.unit),
        }
    }
}

fn show(v: Option<&Json>) -> String {
    v.map(Json::to_string).unwrap_or_default()
}

/// A number, or a string of one (EdgeX passes protocol properties as strings).
fn as_u64(v: &Json) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Seconds (EdgeX's unit: `"5"`), or a Go duration (`"500ms"`).
fn as_duration(v: &Json) -> Option<Duration> {
    if let Some(secs) = as_u64(v) {
        return Some(Duration::from_secs(secs));
    }
    v.as_str().and_then(parse_duration)
}

/// One request, as the driver makes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Read `count` from `start` of a table (functions 1–4).
    Read(crate::resource::Table, u16, u16),
    /// Write one coil (function 5).
    WriteCoil(u16, bool),
    /// Write one register (function 6).
    WriteRegister(u16, u16),
    /// Write registers (function 16).
    WriteRegisters(u16, Vec<u16>),
    /// Set one bit of a holding register, keeping the others: read it (function 3), then
    /// write it (function 6).
    SetBit(u16, u8, bool),
}

/// What a request answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Registers read.
    Words(Vec<u16>),
    /// Bits read.
    Bits(Vec<bool>),
    /// A write done.
    Done,
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// The device answered with a Modbus exception.
    Exception(ExceptionCode),
    /// No answer in time.
    Timeout(String),
    /// The connection could not be opened or broke.
    Unreachable(String),
    /// The device's answer does not fit the request.
    Malformed(String),
}

impl Failure {
    /// The driver error, with `context` (device, request, resources) before the reason.
    pub fn into_driver_error(self, context: &str) -> DriverError {
        match self {
            Failure::Exception(code) => DriverError::Refused(format!(
                "{context}: the device answered Modbus exception {:#04x} ({code})",
                u8::from(code)
            )),
            Failure::Timeout(why) => DriverError::Timeout(format!("{context}: {why}")),
            Failure::Unreachable(why) | Failure::Malformed(why) => DriverError::Failed(format!("{context}: {why}")),
        }
    }
}

/// Which connection a target uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LinkKey {
    Tcp(String, u16, u8),
    Serial(String),
}

/// The state of one connection.
struct LinkState {
    ctx: Option<Context>,
    /// The serial settings it was opened with (RTU).
    serial: Option<Serial>,
    /// A request was started and not finished (its caller gave up): the connection may
    /// hold half an answer and is reopened.
    in_flight: bool,
    last_used: Instant,
    idle_timeout: Duration,
    /// Consecutive failed attempts to open it.
    failed_opens: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

/// One connection, shared by the devices of one endpoint.
struct Link {
    state: AsyncMutex<LinkState>,
}

/// Every connection of the driver.
pub struct Links {
    links: Mutex<HashMap<LinkKey, Arc<Link>>>,
    max_backoff: Duration,
}

impl Links {
    /// No connections yet; failed opens are retried at most `max_backoff` apart.
    pub fn new(max_backoff: Duration) -> Arc<Self> {
        Arc::new(Self { links: Mutex::new(HashMap::new()), max_backoff: max_backoff.max(FIRST_BACKOFF) })
    }

    fn link(&self, target: &Target) -> Arc<Link> {
        let key = match &target.endpoint {
            Endpoint::Tcp { host, port } => LinkKey::Tcp(host.clone(), *port, target.unit),
            Endpoint::Rtu(serial) => LinkKey::Serial(serial.path.clone()),
        };
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Link {
                    state: AsyncMutex::new(LinkState {
                        ctx: None,
                        serial: None,
                        in_flight: false,
                        last_used: Instant::now(),
                        idle_timeout: target.idle_timeout,
                        failed_opens: 0,
                        retry_at: None,
                        last_error: String::new(),
                    }),
                })
            })
            .clone()
    }

    /// Runs `requests` in order on the connection of `target`, holding it for all of them so
    /// that a read-modify-write is not interleaved with another device's request. Stops at the
    /// first failure; the answers so far come back with it.
    pub async fn run(&self, target: &Target, requests: &[Request]) -> (Vec<Answer>, Option<Failure>) {
        let link = self.link(target);
        let mut state = link.state.lock().await;
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            match self.call(&mut state, target, request).await {
                Ok(answer) => answers.push(answer),
                Err(failure) => return (answers, Some(failure)),
            }
        }
        (answers, None)
    }

    /// Opens the connection if needed, then makes one request with the target's timeout.
    async fn call(&self, state: &mut LinkState, target: &Target, request: &Request) -> Result<Answer, Failure> {
        state.idle_timeout = target.idle_timeout;
        if std::mem::take(&mut state.in_flight) {
            tracing::debug!(%target, "A request was abandoned mid-way; reopening the connection.");
            state.ctx = None;
        }
        if let (Some(open), Endpoint::Rtu(serial)) = (&state.serial, &target.endpoint) {
            if open != serial && state.ctx.is_some() {
                tracing::info!(path = %serial.path, "Serial settings changed; reopening the line.");
                state.ctx = None;
            }
        }
        if state.ctx.is_none() {
            self.open(state, target).await?;
        }
        let Some(ctx) = state.ctx.as_mut() else {
            return Err(Failure::Unreachable(format!("{target}: not connected")));
        };
        ctx.set_slave(Slave(target.unit));
        state.in_flight = true;
        let outcome = tokio::time::timeout(target.timeout, execute(ctx, request)).await;
        state.in_flight = false;
        state.last_used = Instant::now();
        match outcome {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(code))) => Err(Failure::Exception(code)),
            Ok(Err(error)) => {
                state.ctx = None;
                Err(Failure::Unreachable(format!("{target}: the connection failed: {error}")))
            }
            Err(_) => {
                // A late answer would be taken for the next request's: start afresh.
                state.ctx = None;
                Err(Failure::Timeout(format!("{target}: no answer within {:?}", target.timeout)))
            }
        }
    }

    async fn open(&self, state: &mut LinkState, target: &Target) -> Result<(), Failure> {
        let now = Instant::now();
        if let Some(at) = state.retry_at.filter(|&at| at > now) {
            return Err(Failure::Unreachable(format!(
                "{target}: not connected ({}); next attempt in {} ms",
                state.last_error,
                (at - now).as_millis()
            )));
        }
        let opened = tokio::time::timeout(target.timeout, connect(target)).await;
        let error = match opened {
            Ok(Ok(ctx)) => {
                if state.failed_opens > 0 {
                    tracing::info!(%target, "Connected again.");
                }
                state.ctx = Some(ctx);
                state.serial = match &target.endpoint {
                    Endpoint::Rtu(serial) => Some(serial.clone()),
                    Endpoint::Tcp { .. } => None,
                };
                state.failed_opens = 0;
                state.retry_at = None;
                state.last_used = Instant::now();
                return Ok(());
            }
            Ok(Err(error)) => Failure::Unreachable(format!("{target}: cannot connect: {error}")),
            Err(_) => Failure::Timeout(format!("{target}: cannot connect within {:?}", target.timeout)),
        };
        state.failed_opens = state.failed_opens.saturating_add(1);
        let backoff =
            FIRST_BACKOFF.saturating_mul(1 << state.failed_opens.min(16).saturating_sub(1)).min(self.max_backoff);
        state.retry_at = Some(Instant::now() + backoff);
        state.last_error = match &error {
            Failure::Unreachable(why) | Failure::Timeout(why) | Failure::Malformed(why) => why.clone(),
            Failure::Exception(code) => code.to_string(),
        };
        if state.failed_opens == 1 {
            tracing::warn!(%target, error = %state.last_error, "Cannot connect; retrying with backoff.");
        }
        Err(error)
    }

    /// Closes the connections unused for longer than their `IdleTimeout`; those in use are
    /// left alone.
    fn close_idle(&self) {
        let links: Vec<Arc<Link>> = self.links.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for link in links {
            if let Ok(mut state) = link.state.try_lock() {
                let idle = state.idle_timeout;
                if state.ctx.is_some() && !idle.is_zero() && state.last_used.elapsed() > idle {
                    tracing::debug!("Closing a connection idle for longer than its IdleTimeout.");
                    state.ctx = None;
                }
            }
        }
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let links: Vec<Arc<Link>> = self.links.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for link in links {
            if let Some(mut ctx) = link.state.lock().await.ctx.take() {
                let _ = ctx.disconnect().await;
            }
        }
    }
}

/// Every second, closes the connections of `links` idle for longer than their `IdleTimeout`;
/// ends when `links` is dropped.
pub async fn close_idle_connections(links: Weak<Links>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(links) = links.upgrade() else { return };
        links.close_idle();
    }
}

async fn connect(target: &Target) -> std::io::Result<Context> {
    let slave = Slave(target.unit);
    match &target.endpoint {
        Endpoint::Tcp { host, port } => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            Ok(tokio_modbus::client::tcp::attach_slave(stream, slave))
        }
        Endpoint::Rtu(serial) => {
            use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, StopBits};
            let port = tokio_serial::new(&serial.path, serial.baud_rate)
                .data_bits(match serial.data_bits {
                    5 => DataBits::Five,
                    6 => DataBits::Six,
                    7 => DataBits::Seven,
                    _ => DataBits::Eight,
                })
                .stop_bits(if serial.stop_bits == 2 { StopBits::Two } else { StopBits::One })
                .parity(match serial.parity {
                    'O' => Parity::Odd,
                    'E' => Parity::Even,
                    _ => Parity::None,
                })
                .open_native_async()
                .map_err(std::io::Error::other)?;
            Ok(tokio_modbus::client::rtu::attach_slave(port, slave))
        }
    }
}

/// One request on an open connection: the two-layer result of tokio-modbus.
async fn execute(ctx: &mut Context, request: &Request) -> tokio_modbus::Result<Answer> {
    use crate::resource::Table;
    Ok(match request {
        Request::Read(Table::Coils, start, count) => ctx.read_coils(*start, *count).await?.map(Answer::Bits),
        Request::Read(Table::DiscreteInputs, start, count) => {
            ctx.read_discrete_inputs(*start, *count).await?.map(Answer::Bits)
        }
        Request::Read(Table::HoldingRegisters, start, count) => {
            ctx.read_holding_registers(*start, *count).await?.map(Answer::Words)
        }
        Request::Read(Table::InputRegisters, start, count) => {
            ctx.read_input_registers(*start, *count).await?.map(Answer::Words)
        }
        Request::WriteCoil(address, value) => ctx.write_single_coil(*address, *value).await?.map(|()| Answer::Done),
        Request::WriteRegister(address, word) => {
            ctx.write_single_register(*address, *word).await?.map(|()| Answer::Done)
        }
        Request::WriteRegisters(address, words) => {
            ctx.write_multiple_registers(*address, words).await?.map(|()| Answer::Done)
        }
        Request::SetBit(address, bit, value) => match ctx.read_holding_registers(*address, 1).await? {
            Err(code) => Err(code),
            Ok(words) => {
                let old = words.first().copied().unwrap_or(0);
                let word = if *value { old | (1 << bit) } else { old & !(1 << bit) };
                ctx.write_single_register(*address, word).await?.map(|()| Answer::Done)
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn protocols(value: Json) -> Protocols {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn edgex_properties_as_strings_or_numbers() {
        let t = Target::parse(&protocols(json!({"modbus-tcp": {
            "Address": "10.0.0.5", "Port": "1502", "UnitID": "7", "Timeout": "2", "IdleTimeout": "5"
        }})))
        .unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp { host: "10.0.0.5".into(), port: 1502 });
        assert_eq!((t.unit, t.timeout, t.idle_timeout), (7, Duration::from_secs(2), Duration::from_secs(5)));
        let t = Target::parse(&protocols(json!({"modbus-rtu": {
            "Address": "/dev/ttyUSB0", "BaudRate": 19200, "DataBits": "7", "StopBits": "2", "Parity": "E",
            "UnitID": 1, "Timeout": "250ms"
        }})))
        .unwrap();
        let Endpoint::Rtu(serial) = &t.endpoint else { panic!("RTU expected") };
        assert_eq!((serial.baud_rate, serial.data_bits, serial.stop_bits, serial.parity), (19200, 7, 2, 'E'));
        assert_eq!(t.timeout, Duration::from_millis(250));
        assert_eq!(t.to_string(), "modbus-rtu /dev/ttyUSB0 unit 1");
    }

    #[test]
    fn bad_properties_are_named() {
        let cases = [
            (json!({}), "protocols: neither"),
            (json!({"modbus-tcp": {"Address": "h", "UnitID": "1"}, "modbus-rtu": {}}), "protocols: both"),
            (json!({"modbus-tcp": {"UnitID": "1"}}), "protocol modbus-tcp, property Address is missing"),
            (json!({"modbus-tcp": {"Address": "h"}}), "protocol modbus-tcp, property UnitID is missing"),
            (json!({"modbus-tcp": {"Address": "h", "UnitID": "256"}}), "protocol modbus-tcp, property UnitID:"),
            (
                json!({"modbus-tcp": {"Address": "h", "UnitID": "1", "Port": "x"}}),
                "protocol modbus-tcp, property Port:",
            ),
            (
                json!({"modbus-tcp": {"Address": "h", "UnitID": "1", "Timeout": "soon"}}),
                "protocol modbus-tcp, property Timeout:",
            ),
            (
                json!({"modbus-rtu": {"Address": "/dev/x", "UnitID": "1"}}),
                "protocol modbus-rtu, property BaudRate is missing",
            ),
            (
                json!({"modbus-rtu": {"Address": "/dev/x", "UnitID": "1", "BaudRate": "9600", "Parity": "Z"}}),
                "protocol modbus-rtu, property Parity:",
            ),
        ];
        for (props, want) in cases {
            let err = Target::parse(&protocols(props.clone())).unwrap_err();
            assert!(err.starts_with(want), "{props}: {err}");
        }
    }
}
