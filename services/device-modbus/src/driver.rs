//! [`ModbusDriver`]: reads and writes device resources over Modbus TCP or RTU.
//!
//! A read command is planned ([`crate::plan`]) into as few requests as the register map
//! allows, made in order on the device's connection ([`crate::connection`]), and split into
//! values ([`crate::resource`]). When a request joined across unasked addresses is refused
//! with a Modbus exception (a device whose register map has holes), the resources it covered
//! are read again without gaps, so that the error names the resource at fault.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use oxedge_contracts::validate::parse_duration;
use oxedge_contracts::Device;
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    async_trait, CommandRequest, CommandValue, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk, Value,
};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::connection::{close_idle_connections, Answer, Failure, Links, Request, Target};
use crate::plan::{plan, Block};
use crate::resource::{Register, WriteOp};

/// The driver's settings: the `driver` section of the service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Reads of one command are joined into one request across at most this many addresses
    /// that no resource asked for (registers, or bits of coils and discrete inputs); 0 joins
    /// only adjacent resources.
    pub max_gap: u16,
    /// The longest wait between two attempts to open a connection that failed (Go duration).
    pub max_backoff: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { max_gap: 8, max_backoff: "5s".to_owned() }
    }
}

impl Settings {
    /// `max_backoff` as a duration; the error names the key.
    pub fn max_backoff(&self) -> Result<Duration, String> {
        parse_duration(&self.max_backoff)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("driver.max_backoff: '{}' is not a duration such as 500ms or 5s", self.max_backoff))
    }
}

/// The device-modbus protocol driver. Cheap to clone; clones share their connections.
#[derive(Clone)]
pub struct ModbusDriver {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RwLock<Settings>,
    links: RwLock<Arc<Links>>,
    reaper: Mutex<Option<JoinHandle<()>>>,
}

impl Default for ModbusDriver {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

impl ModbusDriver {
    /// A driver with `settings`; when the SDK runs it, [`ProtocolDriver::initialize`] replaces
    /// them with the configuration's `driver` section.
    pub fn new(settings: Settings) -> Self {
        let links = Links::new(settings.max_backoff().unwrap_or(Duration::from_secs(5)));
        Self {
            inner: Arc::new(Inner {
                settings: RwLock::new(settings),
                links: RwLock::new(links),
                reaper: Mutex::new(None),
            }),
        }
    }

    fn links(&self) -> Arc<Links> {
        self.inner.links.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn max_gap(&self) -> u16 {
        self.inner.settings.read().unwrap_or_else(|e| e.into_inner()).max_gap
    }

    /// Starts closing idle connections, once.
    fn start_reaper(&self) {
        let mut reaper = self.inner.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if reaper.is_none() {
            *reaper = Some(tokio::spawn(close_idle_connections(Arc::downgrade(&self.links()))));
        }
    }

    /// Reads `blocks` in order into `values`; on failure, the block that failed.
    async fn read_blocks(
        &self,
        target: &Target,
        registers: &[Register],
        blocks: &[Block],
        values: &mut [Option<Value>],
    ) -> Result<(), (usize, Failure)> {
        let requests: Vec<Request> = blocks.iter().map(|b| Request::Read(b.table, b.start, b.count)).collect();
        let (answers, failure) = self.links().run(target, &requests).await;
        for (n, (block, answer)) in blocks.iter().zip(&answers).enumerate() {
            for &i in &block.members {
                let r = &registers[i];
                let offset = usize::from(r.address - block.start);
                let decoded = match answer {
                    Answer::Words(words) => r.decode_words(words.get(offset..).unwrap_or_default()),
                    Answer::Bits(bits) => r.decode_bits(bits.get(offset..).unwrap_or_default()),
                    Answer::Done => Err("the device answered a read as a write".to_owned()),
                };
                values[i] =
                    Some(decoded.map_err(|why| (n, Failure::Malformed(format!("resource {}: {why}", r.resource))))?);
            }
        }
        match failure {
            Some(failure) => Err((answers.len(), failure)),
            None => Ok(()),
        }
    }
}

/// `device D: reading HOLDING_REGISTERS 0..=4 (resources A, B)`.
fn read_context(device: &str, registers: &[Register], block: &Block) -> String {
    let names: Vec<&str> = block.members.iter().map(|&i| registers[i].resource.as_str()).collect();
    format!(
        "device {device}: reading {} {}..={} (resource{} {})",
        block.table.name(),
        block.start,
        u32::from(block.start) + u32::from(block.count) - 1,
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn target_of(device: &str, protocols: &Protocols) -> DriverResult<Target> {
    Target::parse(protocols).map_err(|e| DriverError::Invalid(format!("device {device}: {e}")))
}

fn register_of(device: &str, req: &CommandRequest) -> DriverResult<Register> {
    Register::parse(req)
        .map_err(|e| DriverError::Invalid(format!("device {device}, resource {}: {e}", req.resource_name)))
}

#[async_trait]
impl ProtocolDriver for ModbusDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let settings: Settings = sdk.driver_config().map_err(|e| DriverError::Invalid(e.to_string()))?;
        let backoff = settings.max_backoff().map_err(DriverError::Invalid)?;
        *self.inner.links.write().unwrap_or_else(|e| e.into_inner()) = Links::new(backoff);
        *self.inner.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
        // A reaper started by an earlier call watches the connections just replaced.
        if let Some(reaper) = self.inner.reaper.lock().unwrap_or_else(|e| e.into_inner()).take() {
            reaper.abort();
        }
        self.start_reaper();
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        self.start_reaper();
        let target = target_of(device, protocols)?;
        let registers = requests.iter().map(|r| register_of(device, r)).collect::<DriverResult<Vec<_>>>()?;
        let mut values: Vec<Option<Value>> = vec![None; registers.len()];
        let blocks = plan(&registers, 0..registers.len(), self.max_gap());
        if let Err((failed, failure)) = self.read_blocks(&target, &registers, &blocks, &mut values).await {
            let block = &blocks[failed];
            let retry_without_gaps = matches!(failure, Failure::Exception(_)) && block.has_gaps(&registers);
            if !retry_without_gaps {
                return Err(failure.into_driver_error(&read_context(device, &registers, block)));
            }
            tracing::debug!(device, "A joined read was refused; reading its resources without gaps.");
            let rest = blocks[failed..].iter().flat_map(|b| b.members.iter().copied());
            let blocks = plan(&registers, rest, 0);
            if let Err((failed, failure)) = self.read_blocks(&target, &registers, &blocks, &mut values).await {
                return Err(failure.into_driver_error(&read_context(device, &registers, &blocks[failed])));
            }
        }
        registers
            .into_iter()
            .zip(values)
            .map(|(r, v)| {
                v.map(|v| CommandValue::new(r.resource.clone(), v)).ok_or_else(|| {
                    DriverError::Failed(format!("device {device}, resource {}: no request read it", r.resource))
                })
            })
            .collect()
    }

    async fn handle_write_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()> {
        self.start_reaper();
        let target = target_of(device, protocols)?;
        let mut ops = Vec::with_capacity(writes.len());
        for WriteCommand { request: req, value: cv } in writes {
            let op = register_of(device, req)?
                .encode(&cv.value)
                .map_err(|e| DriverError::Invalid(format!("device {device}, resource {}: {e}", req.resource_name)))?;
            ops.push(match op {
                WriteOp::Coil(address, value) => Request::WriteCoil(address, value),
                WriteOp::Registers(address, words) if words.len() == 1 => Request::WriteRegister(address, words[0]),
                WriteOp::Registers(address, words) => Request::WriteRegisters(address, words),
                WriteOp::RegisterBit { address, bit, value } => Request::SetBit(address, bit, value),
            });
        }
        let (done, failure) = self.links().run(&target, &ops).await;
        match failure {
            None => Ok(()),
            Some(failure) => {
                let name = &writes[done.len()].request.resource_name;
                Err(failure.into_driver_error(&format!("device {device}: writing resource {name}")))
            }
        }
    }

    async fn validate_device(&self, device: &Device) -> DriverResult<()> {
        target_of(&device.name, &device.protocols).map(|_| ())
    }

    async fn stop(&self, _force: bool) {
        if let Some(reaper) = self.inner.reaper.lock().unwrap_or_else(|e| e.into_inner()).take() {
            reaper.abort();
        }
        self.links().close_all().await;
    }
}
