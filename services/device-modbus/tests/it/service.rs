//! device-modbus as a device service: the SDK with a real core-metadata (in-process, SQLite in
//! a temporary directory) on an in-process bus, loading `profiles/device-modbus/profiles`
//! (EdgeX's own Modbus profile unchanged among them), against pymodbus servers.

use std::time::Duration;

use serde_json::json;

use crate::support::{device, devices_yaml, ModbusServer, Stack};

fn float(text: &str) -> f64 {
    text.parse().unwrap_or_else(|_| panic!("{text} is not a float"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edgex_reference_profile_and_the_power_meter_read_and_write_through_the_service() {
    // EdgeX's HVAC profile: SwitchA on, OperationMode 2 (Auto), FanSpeed 3 (Auto), Temperature
    // 23.5, RoomTemperature 21.5.
    let server = ModbusServer::start(&[
        "--init",
        r#"{"co": {"0": [true]}, "hr": {"1": [2, 0, 3, 0, 235]}, "ir": {"3": [215]}}"#,
    ]);
    // The power meter, unit 2 of another server: voltages 230.5 V (low word first), 50.00 Hz,
    // energy 65538 Wh, serial PO-M0001, status word 0b1001.
    let meter = ModbusServer::start(&[
        "--units",
        "2",
        "--init",
        r#"{"ir": {"0": [32768, 17254, 32768, 17254, 32768, 17254, 5000, 0, 0, 0, 1, 2],
                   "20": [20559, 11597, 12336, 12337], "30": [9]}}"#,
    ]);
    let devices = devices_yaml(&[
        device("HVAC", "Test-Device-Modbus-Profile", server.port, 1, json!([])),
        device("Meter", "Oxedge-Modbus-PowerMeter", meter.port, 2, json!([])),
        json!({"name": "Broken", "profileName": "Test-Device-Modbus-Profile",
               "protocols": {"modbus-tcp": {"Address": "127.0.0.1", "Port": "502", "UnitID": "300"}}}),
    ]);
    let s = Stack::start(None, &devices, |_| {}).await;
    s.wait_until("the service has its devices", Duration::from_secs(20), async || {
        s.api.get("/device/name/Meter/Voltages").await.status == 200
    })
    .await;
    let answer = s.metadata.get("/device/name/Broken").await;
    assert_eq!(answer.status, 404, "the driver rejects a device whose UnitID is 300");
    // EdgeX's profile is in core-metadata as EdgeX wrote it.
    let profile = s.metadata.get("/deviceprofile/name/Test-Device-Modbus-Profile").await;
    assert_eq!(
        profile.body["profile"]["deviceResources"][3]["attributes"],
        json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 2})
    );

    // EdgeX's command Values: a coil and four holding registers, in two requests.
    server.take_log();
    let values = s.read("HVAC", "Values").await;
    assert_eq!(values["SwitchA"], "ON");
    assert_eq!(values["OperationMode"], "Auto");
    assert_eq!(values["FanSpeed"], "Auto");
    assert_eq!(float(&values["Temperature"]), 23.5);
    let log = server.take_log();
    assert_eq!(
        log.iter().map(|l| (l.function, l.address, l.count)).collect::<Vec<_>>(),
        vec![(1, 0, 1), (3, 1, 5)],
        "{log:?}"
    );
    assert_eq!(float(&s.read("HVAC", "RoomTemperature").await["RoomTemperature"]), 21.5);

    let put = s
        .api
        .put(
            "/device/name/HVAC/Values",
            &json!({"SwitchA": "false", "OperationMode": "3", "FanSpeed": "9", "Temperature": "18.5"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let values = s.read("HVAC", "Values").await;
    assert_eq!(
        (values["SwitchA"].as_str(), values["OperationMode"].as_str(), values["FanSpeed"].as_str()),
        ("OFF", "Dry", "VAMHiFreshUp")
    );
    assert_eq!(float(&values["Temperature"]), 18.5);
    assert_eq!(s.api.put("/device/name/HVAC/Switch", &json!({"SwitchA": "true", "SwitchB": "true"})).await.status, 200);
    let switch = s.read("HVAC", "Switch").await;
    assert_eq!((switch["SwitchA"].as_str(), switch["SwitchB"].as_str()), ("ON", "ON"));
    // The profile's maximum is checked before anything is written.
    let put = s.api.put("/device/name/HVAC/OperationMode", &json!({"OperationMode": "12"})).await;
    assert_eq!(put.status, 400, "{}", put.body);

    // The power meter: word-swapped floats, a scaled Uint16, Uint64, a string, status bits.
    let voltages = s.read("Meter", "Voltages").await;
    assert!(voltages.values().all(|v| (float(v) - 230.5).abs() < 1e-3), "{voltages:?}");
    assert_eq!(float(&s.read("Meter", "Frequency").await["Frequency"]), 50.0);
    assert_eq!(s.read("Meter", "ActiveEnergy").await["ActiveEnergy"], "65538");
    assert_eq!(s.read("Meter", "SerialNumber").await["SerialNumber"], "PO-M0001");
    let alarms = s.read("Meter", "Alarms").await;
    assert_eq!(
        (alarms["OverVoltageAlarm"].as_str(), alarms["PhaseLossAlarm"].as_str(), alarms["TamperSwitch"].as_str()),
        ("true", "true", "false")
    );
    let put = s
        .api
        .put(
            "/device/name/Meter/Settings",
            &json!({"CurrentLimit": "12.5", "DemandPeriod": "900", "PulseConstant": "100000"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let settings = s.read("Meter", "Settings").await;
    assert_eq!(float(&settings["CurrentLimit"]), 12.5);
    assert_eq!((settings["DemandPeriod"].as_str(), settings["PulseConstant"].as_str()), ("900", "100000"));
    assert_eq!(s.api.put("/device/name/Meter/Relays", &json!({"Relay2": "true"})).await.status, 200);
    let relays = s.read("Meter", "Relays").await;
    assert_eq!((relays["Relay1"].as_str(), relays["Relay2"].as_str()), ("OFF", "ON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_mid_poll_sets_its_device_down_then_up_while_the_others_keep_serving() {
    let mut flaky = ModbusServer::start(&["--init", r#"{"hr": {"1": [4]}}"#]);
    let steady = ModbusServer::start(&["--init", r#"{"hr": {"1": [5]}}"#]);
    let auto = json!([{"interval": "200ms", "onChange": false, "sourceName": "OperationMode"}]);
    let devices = devices_yaml(&[
        device("Flaky", "Test-Device-Modbus-Profile", flaky.port, 1, auto.clone()),
        device("Steady", "Test-Device-Modbus-Profile", steady.port, 1, auto),
    ]);
    let s = Stack::start(None, &devices, |cfg| {
        cfg.device.allowed_fails = 2;
        cfg.device.device_down_timeout = "500ms".into();
        cfg.driver.insert("max_backoff".into(), json!("200ms"));
    })
    .await;
    s.wait_until("both devices are polled", Duration::from_secs(20), async || {
        s.events_of("Flaky") > 2 && s.events_of("Steady") > 2
    })
    .await;

    flaky.kill();
    s.wait_until("Flaky is DOWN in core-metadata", Duration::from_secs(10), async || {
        s.operating_state("Flaky").await == "DOWN"
    })
    .await;
    let answer = s.api.get("/device/name/Flaky/OperationMode").await;
    assert!(matches!(answer.status, 500 | 504), "{}", answer.body);
    assert!(
        answer.message().contains("device Flaky") && answer.message().contains("resource OperationMode"),
        "{}",
        answer.message()
    );
    let (flaky_events, steady_events) = (s.events_of("Flaky"), s.events_of("Steady"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.events_of("Flaky"), flaky_events, "no events from a device that does not answer");
    assert!(s.events_of("Steady") >= steady_events + 3, "the other device keeps being polled");
    assert_eq!(s.operating_state("Steady").await, "UP");

    flaky.restart();
    s.wait_until("Flaky is UP again", Duration::from_secs(10), async || s.operating_state("Flaky").await == "UP").await;
    let resumed = s.events_of("Flaky");
    s.wait_until("Flaky's auto events resume", Duration::from_secs(5), async || s.events_of("Flaky") > resumed + 2)
        .await;
    assert_eq!(s.read("Flaky", "OperationMode").await["OperationMode"], "HAUX");
}

/// A device that answers with Modbus exceptions is reachable: its refusals answer 500 (as
/// EdgeX answers every driver error) but never set it DOWN, where EdgeX counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_refuses_requests_stays_up() {
    let refusing = ModbusServer::start(&["--units", "1", "--fail-units", "1"]);
    let devices = devices_yaml(&[device("Refusing", "Test-Device-Modbus-Profile", refusing.port, 1, json!([]))]);
    let s = Stack::start(None, &devices, |cfg| cfg.device.allowed_fails = 2).await;
    s.wait_until("Refusing is served", Duration::from_secs(10), async || {
        s.api.get("/device/name/Refusing/OperationMode").await.status != 404
    })
    .await;
    for _ in 0..4 {
        let answer = s.api.get("/device/name/Refusing/OperationMode").await;
        assert_eq!(answer.status, 500, "{}", answer.body);
        assert!(answer.message().contains("Modbus exception 0x04"), "{}", answer.message());
    }
    assert_eq!(s.operating_state("Refusing").await, "UP", "refusals count towards DOWN");
}
