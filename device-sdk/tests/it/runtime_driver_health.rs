//! The driver's own health is the check `driver` of `/api/v3/health`.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{CommandRequest, CommandValue, DriverResult, ProtocolDriver, Protocols};
use tokio_util::sync::CancellationToken;

use crate::runtime_support::*;

/// A driver whose health is whatever the test sets.
#[derive(Clone, Default)]
struct Sick(Arc<Mutex<Option<String>>>);

#[async_trait]
impl ProtocolDriver for Sick {
    async fn handle_read_commands(
        &self,
        _: &str,
        _: &Protocols,
        _: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        Ok(Vec::new())
    }

    async fn handle_write_commands(&self, _: &str, _: &Protocols, _: &[WriteCommand]) -> DriverResult<()> {
        Ok(())
    }

    async fn health(&self) -> Result<(), String> {
        self.0.lock().unwrap().clone().map_or(Ok(()), Err)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sick_driver_makes_health_503_with_its_reason_and_the_api_keeps_serving() {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    let driver = Sick::default();
    *driver.0.lock().unwrap() = Some("no radio adapter".to_owned());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", listener.local_addr().unwrap().port()));
    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let serve = oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone("device-sick", bus, token),
        config(md.port),
        Arc::new(driver.clone()),
        listener,
    );
    tokio::spawn(serve);

    wait_until("registered", async || md.get("/deviceservice/name/device-sick").await.status == 200).await;
    let health = api.get("/health").await;
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.body["checks"]["driver"], "no radio adapter", "{health:?}");
    assert_eq!(api.get("/ping").await.status, 200);

    *driver.0.lock().unwrap() = None;
    wait_until("healthy once the driver is", async || api.get("/health").await.status == 200).await;
}
