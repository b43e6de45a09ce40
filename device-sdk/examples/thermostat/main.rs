//! A simulated thermostat: the room warms while heating is on and cools when it is off.
//! Its profile and device are in `profiles/` and `devices/`; see `configuration.yaml`.
use std::sync::Mutex;

use oxedge_device_sdk::{
    async_trait, CommandRequest as Req, CommandValue, DriverError, DriverResult, Protocols, Sdk, Value, WriteCommand,
};

#[derive(Default)]
struct Thermostat(Mutex<(f32, f32, bool)>); // temperature, setpoint, heating

#[derive(serde::Deserialize)]
struct Settings {
    start_temperature: f32,
}

#[async_trait]
impl oxedge_device_sdk::ProtocolDriver for Thermostat {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let settings: Settings = sdk.driver_config().map_err(|e| DriverError::Invalid(e.to_string()))?;
        *self.0.lock().unwrap() = (settings.start_temperature, 21.0, false);
        Ok(())
    }

    async fn handle_read_commands(&self, _: &str, _: &Protocols, reqs: &[Req]) -> DriverResult<Vec<CommandValue>> {
        let mut state = self.0.lock().unwrap();
        state.0 += if state.2 { 0.5 } else { -0.2 };
        let read = |r: &Req| match r.resource_name.as_str() {
            "Temperature" => Ok(Value::Float32(state.0)),
            "Setpoint" => Ok(Value::Float32(state.1)),
            "Heating" => Ok(Value::Bool(state.2)),
            other => Err(DriverError::Invalid(format!("no resource {other}"))),
        };
        reqs.iter().map(|r| Ok(CommandValue::new(&r.resource_name, read(r)?))).collect()
    }

    async fn handle_write_commands(&self, _: &str, _: &Protocols, writes: &[WriteCommand]) -> DriverResult<()> {
        let mut state = self.0.lock().unwrap();
        for WriteCommand { request, value } in writes {
            match (request.resource_name.as_str(), &value.value) {
                ("Setpoint", Value::Float32(v)) => state.1 = *v,
                ("Heating", Value::Bool(on)) => state.2 = *on,
                (name, _) => return Err(DriverError::Invalid(format!("{name} cannot be written"))),
            }
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main("device-thermostat", env!("CARGO_PKG_VERSION"), 59910, Thermostat::default())
}
