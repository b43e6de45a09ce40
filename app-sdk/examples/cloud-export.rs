//! A complete app service: events of the `Thermostat-*` devices, readings converted to
//! Fahrenheit by a custom function, tagged with the site by another, as JSON to a cloud
//! MQTT broker on `factory/{deviceName}/{sourceName}`, with store-and-forward from the
//! configuration. Run: `CLOUD_MQTT_URL=tcp://cloud:1883 cargo run -p oxedge-app-sdk --example
//! cloud-export -- -c FILE`.

use std::sync::Arc;

use oxedge_app_sdk::export::mqtt::{MqttExport, MqttExportSettings};
use oxedge_app_sdk::functions::transform::TransformType;
use oxedge_app_sdk::functions::{Filter, FilterBy, FilterSettings, Transform};
use oxedge_app_sdk::{async_trait, from_fn, Context, Data, Function, FunctionError, Pipeline};

/// A custom function written as a trait impl: adds the site to every event's tags.
struct TagSite(String);

#[async_trait]
impl Function for TagSite {
    fn name(&self) -> &str {
        "TagSite"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let Data::Event(mut event) = data else { return Err(FunctionError::new("TagSite: expects an event")) };
        event.tags.insert("site".into(), self.0.clone().into());
        Ok(Some(Data::Event(event)))
    }
}

fn main() -> anyhow::Result<()> {
    oxedge_app_sdk::main("app-cloud-export", env!("CARGO_PKG_VERSION"), 59710, |app| {
        let thermostats = FilterSettings { names: vec!["^Thermostat-".into()], filter_out: false };
        // A custom function written as an async closure: Celsius readings to Fahrenheit.
        let fahrenheit = from_fn("ToFahrenheit", |_ctx, data| async move {
            let Data::Event(mut event) = data else { return Ok(Some(data)) };
            for reading in event.readings.iter_mut().filter(|r| r.units == "C") {
                let celsius: f64 = reading.value.as_deref().unwrap_or("").parse().map_err(|_| {
                    FunctionError::new(format!("reading {}: value is not a number", reading.resource_name))
                })?;
                reading.value = Some(format!("{:.2}", celsius * 9.0 / 5.0 + 32.0));
                reading.units = "F".into();
            }
            Ok(Some(Data::Event(event)))
        });
        let cloud = std::env::var("CLOUD_MQTT_URL").unwrap_or_else(|_| "tcp://localhost:1884".into());
        let export = MqttExportSettings::new(cloud, "factory/{deviceName}/{sourceName}");
        let functions: Vec<Arc<dyn Function>> = vec![
            Arc::new(Filter::new(FilterBy::DeviceName, thermostats)?),
            Arc::new(fahrenheit),
            Arc::new(TagSite("plant-7".into())),
            Arc::new(Transform::new(TransformType::Json)),
            Arc::new(MqttExport::new(export, app)?),
        ];
        Ok(vec![Pipeline::new("thermostats", vec![], functions)])
    })
}
