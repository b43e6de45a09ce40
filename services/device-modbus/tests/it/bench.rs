//! Measurements against pymodbus (ignored: run them built with --release):
//!
//! ```sh
//! cargo test --release -p oxedge-device-modbus --test it -- bench:: --ignored --nocapture --test-threads 1
//! ```
//!
//! - `polling_100_devices_of_20_registers_at_1_hz`: the device service (SDK, driver, and the
//!   in-process core-metadata and bus it needs) polls 100 devices (units 1–100 of one
//!   pymodbus server, one connection each) × 20 holding registers every second by auto event
//!   for 30 s; prints events/s, Modbus requests/s, the process's CPU (% of one core) and RSS.
//! - `maximum_register_reads_against_one_server`: the driver alone reads one server as fast
//!   as it answers, 20 and 125 registers per request, over 1 and 4 connections; prints
//!   requests/s, registers/s, the process's CPU and RSS.

use std::time::{Duration, Instant};

use oxedge_contracts::ValueType;
use oxedge_device_modbus::ModbusDriver;
use oxedge_device_sdk::{CommandRequest, ProtocolDriver};
use serde_json::json;

use crate::support::{device, devices_yaml, req, ModbusServer, Stack};

/// CPU seconds (user + system) used so far by process `pid`, from `/proc/{pid}/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// This process's resident set size in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

fn registers(n: u16) -> Vec<CommandRequest> {
    (0..n)
        .map(|a| {
            req(&format!("R{a}"), ValueType::Uint16, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": a}))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --release, see the file's doc"]
async fn polling_100_devices_of_20_registers_at_1_hz() {
    let units: Vec<String> = (1..=100).map(|u| u.to_string()).collect();
    let server = ModbusServer::start(&["--units", &units.join(","), "--size", "50"]);
    let profiles = tempfile::tempdir().unwrap();
    let resources: Vec<serde_json::Value> = (0..20)
        .map(|a| {
            json!({"name": format!("R{a}"), "attributes": {"primaryTable": "HOLDING_REGISTERS", "startingAddress": a},
                   "properties": {"valueType": "Uint16", "readWrite": "R"}})
        })
        .collect();
    let operations: Vec<serde_json::Value> = (0..20).map(|a| json!({"deviceResource": format!("R{a}")})).collect();
    let profile = json!({"name": "Bench-20", "deviceResources": resources,
                         "deviceCommands": [{"name": "All", "readWrite": "R", "resourceOperations": operations}]});
    std::fs::write(profiles.path().join("bench.yaml"), profile.to_string()).unwrap();
    let auto = json!([{"interval": "1s", "onChange": false, "sourceName": "All"}]);
    let devices: Vec<serde_json::Value> =
        (1..=100u8).map(|u| device(&format!("meter-{u:03}"), "Bench-20", server.port, u, auto.clone())).collect();
    let s = Stack::start(Some(profiles.path().to_owned()), &devices_yaml(&devices), |_| {}).await;
    s.wait_until("every device is polled", Duration::from_secs(60), async || s.events.lock().unwrap().len() == 100)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let total = |s: &Stack| s.events.lock().unwrap().values().sum::<usize>();
    let window = Duration::from_secs(30);
    let (events0, requests0, cpu0, py0) =
        (total(&s), server.log().len(), cpu_seconds("self"), cpu_seconds(&server.pid().to_string()));
    let started = Instant::now();
    let mut peak_rss = rss_mib();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_mib());
    }
    let secs = started.elapsed().as_secs_f64();
    let events = (total(&s) - events0) as f64 / secs;
    let requests = (server.log().len() - requests0) as f64 / secs;
    let cpu = (cpu_seconds("self") - cpu0) / secs * 100.0;
    let py = (cpu_seconds(&server.pid().to_string()) - py0) / secs * 100.0;
    println!(
        "100 devices x 20 registers at 1 Hz for {secs:.0} s: {events:.1} events/s ({:.0} readings/s), {requests:.1} \
         Modbus requests/s; device service process {cpu:.1}% of a core, RSS {peak_rss:.1} MiB (peak); pymodbus \
         {py:.1}% of a core",
        events * 20.0
    );
    assert!(events > 95.0 && events < 105.0, "{events} events/s");
    assert!((requests - events).abs() < 5.0, "one request per poll: {requests} requests/s for {events} events/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --release, see the file's doc"]
async fn maximum_register_reads_against_one_server() {
    let units: Vec<String> = (1..=4).map(|u| u.to_string()).collect();
    let server = ModbusServer::start(&["--units", &units.join(","), "--size", "200"]);
    let driver = ModbusDriver::default();
    for (per_request, connections) in [(20u16, 1u8), (20, 4), (125, 1), (125, 4)] {
        let resources = registers(per_request);
        let window = Duration::from_secs(8);
        let (requests0, py0, cpu0) = (server.log().len(), cpu_seconds(&server.pid().to_string()), cpu_seconds("self"));
        let started = Instant::now();
        let tasks: Vec<_> = (1..=connections)
            .map(|unit| {
                let (driver, resources, protocols) = (driver.clone(), resources.clone(), server.protocols(unit));
                tokio::spawn(async move {
                    let mut reads = 0u64;
                    while started.elapsed() < window {
                        driver.handle_read_commands("bench", &protocols, &resources).await.unwrap();
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let mut reads = 0;
        for t in tasks {
            reads += t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let py = (cpu_seconds(&server.pid().to_string()) - py0) / secs * 100.0;
        let cpu = (cpu_seconds("self") - cpu0) / secs * 100.0;
        assert_eq!(server.log().len() - requests0, reads as usize, "one request per read");
        println!(
            "{per_request} registers per request, {connections} connection(s): {:.0} requests/s, {:.0} registers/s \
             (driver process {cpu:.0}% of a core, RSS {:.1} MiB; pymodbus {py:.0}% of a core)",
            reads as f64 / secs,
            reads as f64 * f64::from(per_request) / secs,
            rss_mib()
        );
    }
}
