//! The driver against a real Modbus server (pymodbus on loopback, and over a serial line when
//! socat can make one): every value type and table, swaps, coalescing, exceptions, timeouts,
//! reconnection, bad attributes.

use std::time::{Duration, Instant};

use oxedge_contracts::ValueType::{self, *};
use oxedge_device_modbus::{ModbusDriver, Settings};
use oxedge_device_sdk::{CommandRequest, CommandValue, DriverError, ProtocolDriver, Protocols, Value, WriteCommand};
use serde_json::json;

use crate::support::{self, *};

fn values(read: Vec<CommandValue>) -> Vec<Value> {
    read.into_iter().map(|cv| cv.value).collect()
}

/// Writes `values[i]` to `requests[i]`, as the SDK pairs them.
async fn write_pairs(
    driver: &ModbusDriver,
    device: &str,
    protocols: &Protocols,
    requests: &[CommandRequest],
    values: &[CommandValue],
) -> Result<(), DriverError> {
    assert_eq!(requests.len(), values.len(), "a test pairs every request with a value");
    let writes: Vec<WriteCommand> =
        requests.iter().zip(values).map(|(r, v)| WriteCommand::new(r.clone(), v.clone())).collect();
    driver.handle_write_commands(device, protocols, &writes).await
}

fn hr(name: &str, vt: ValueType, address: impl Into<serde_json::Value>) -> CommandRequest {
    req(name, vt, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": address.into()}))
}

#[tokio::test]
async fn every_value_type_of_every_table_is_written_and_read_back() {
    let server = ModbusServer::start(&[
        "--init",
        r#"{"ir": {"0": [65535, 65534, 16968, 0, 7]}, "di": {"5": [true]}, "co": {"14": [true]}}"#,
    ]);
    let driver = ModbusDriver::default();
    let p = server.protocols(1);
    let holding = vec![
        hr("I16", Int16, 0),
        hr("U16", Uint16, 1),
        hr("I32", Int32, 2),
        hr("U32", Uint32, 4),
        hr("F32", Float32, 6),
        hr("I64", Int64, 8),
        hr("U64", Uint64, 12),
        hr("F64", Float64, 16),
        req(
            "Str",
            String,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 20, "stringRegisterSize": 3}),
        ),
        hr("Bit", Bool, "23.4"),
        req("Raw", Float32, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 24, "rawType": "INT16"})),
        req("RawU", Float64, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 25, "rawType": "Uint16"})),
        req("Coil", Bool, json!({"primaryTable": "COILS", "startingAddress": 3})),
    ];
    let written = vec![
        Value::Int16(-5),
        Value::Uint16(65000),
        Value::Int32(-70000),
        Value::Uint32(4_000_000_000),
        Value::Float32(-1.25),
        Value::Int64(-5_000_000_000),
        Value::Uint64(u64::MAX - 1),
        Value::Float64(std::f64::consts::PI),
        Value::String("hello".into()),
        Value::Bool(true),
        Value::Float32(-215.0),
        Value::Float64(60000.0),
        Value::Bool(true),
    ];
    let cvs: Vec<CommandValue> =
        holding.iter().zip(&written).map(|(r, v)| CommandValue::new(r.resource_name.clone(), v.clone())).collect();
    write_pairs(&driver, "dev", &p, &holding, &cvs).await.unwrap();
    server.take_log();
    assert_eq!(values(driver.handle_read_commands("dev", &p, &holding).await.unwrap()), written);
    // One request for the holding registers 0..=25 and one for the coil.
    let log = server.take_log();
    assert_eq!(log.len(), 2, "{log:?}");

    // The other bits of register 23 are kept when bit 4 is written.
    write_pairs(&driver, "dev", &p, &[hr("W", Uint16, 23)], &[CommandValue::new("W", Value::Uint16(0x0101))])
        .await
        .unwrap();
    write_pairs(&driver, "dev", &p, &holding[9..10], &[CommandValue::new("Bit", Value::Bool(true))]).await.unwrap();
    let read = driver.handle_read_commands("dev", &p, &[hr("W", Uint16, 23)]).await.unwrap();
    assert_eq!(read[0].value, Value::Uint16(0x0111));

    // Read-only tables.
    let ir = |name: &str, vt, a: u16| req(name, vt, json!({"primaryTable": "INPUT_REGISTERS", "startingAddress": a}));
    let inputs = vec![
        ir("I32", Int32, 0),
        ir("Raw", Float32, 2),
        req("DI", Bool, json!({"primaryTable": "DISCRETES_INPUT", "startingAddress": 5})),
        req("DI2", Bool, json!({"primaryTable": "discrete_inputs", "startingAddress": "6"})),
        req("C14", Bool, json!({"primaryTable": "COILS", "startingAddress": 14})),
        ir("U16", Uint16, 4),
    ];
    assert_eq!(
        values(driver.handle_read_commands("dev", &p, &inputs).await.unwrap()),
        vec![
            Value::Int32(-2),
            Value::Float32(f32::from_bits(0x4248_0000)),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(true),
            Value::Uint16(7)
        ]
    );
    for (r, v) in [(&inputs[0], Value::Int32(1)), (&inputs[2], Value::Bool(true))] {
        let err =
            write_pairs(&driver, "dev", &p, std::slice::from_ref(r), &[CommandValue::new(&r.resource_name, v)]).await;
        let Err(DriverError::Invalid(msg)) = err else { panic!("{err:?}") };
        assert!(msg.contains(&format!("resource {}", r.resource_name)) && msg.contains("read-only"), "{msg}");
    }
}

#[tokio::test]
async fn byte_and_word_swaps_lay_out_registers_as_the_device_does() {
    let server = ModbusServer::start(&[]);
    let driver = ModbusDriver::default();
    let p = server.protocols(1);
    let swapped = |name: &str, vt, a: u16, byte: bool, word: bool| {
        req(
            name,
            vt,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": a, "isByteSwap": byte, "isWordSwap": word}),
        )
    };
    let resources = vec![
        swapped("Plain", Uint32, 0, false, false),
        swapped("Word", Uint32, 2, false, true),
        swapped("Byte", Uint32, 4, true, false),
        swapped("Both", Int32, 6, true, true),
        swapped("F", Float32, 8, false, true),
        swapped("W64", Uint64, 10, false, true),
        swapped("B16", Uint16, 14, true, false),
    ];
    let written = vec![
        Value::Uint32(0x1122_3344),
        Value::Uint32(0x1122_3344),
        Value::Uint32(0x1122_3344),
        Value::Int32(0x1122_3344),
        Value::Float32(1.5),
        Value::Uint64(0x0001_0002_0003_0004),
        Value::Uint16(0x1234),
    ];
    let cvs: Vec<CommandValue> =
        resources.iter().zip(&written).map(|(r, v)| CommandValue::new(r.resource_name.clone(), v.clone())).collect();
    write_pairs(&driver, "dev", &p, &resources, &cvs).await.unwrap();
    let raw: Vec<CommandRequest> = (0..15).map(|a| hr(&format!("R{a}"), Uint16, a)).collect();
    let words: Vec<Value> = values(driver.handle_read_commands("dev", &p, &raw).await.unwrap());
    let f = 1.5f32.to_bits();
    let expect: Vec<u16> = vec![
        0x1122,
        0x3344,
        0x3344,
        0x1122,
        0x2211,
        0x4433,
        0x4433,
        0x2211,
        f as u16,
        (f >> 16) as u16,
        4,
        3,
        2,
        1,
        0x3412,
    ];
    assert_eq!(words, expect.into_iter().map(Value::Uint16).collect::<Vec<_>>());
    assert_eq!(values(driver.handle_read_commands("dev", &p, &resources).await.unwrap()), written);
}

#[tokio::test]
async fn reads_of_one_command_are_coalesced_within_the_pdu_limits() {
    let server = ModbusServer::start(&["--units", "1,2"]);
    let driver = ModbusDriver::new(Settings { max_gap: 4, ..Settings::default() });
    let p = server.protocols(1);
    // 20 adjacent registers and three coils: two requests.
    let mut resources: Vec<CommandRequest> = (0..20).map(|a| hr(&format!("H{a}"), Uint16, a)).collect();
    for a in [0, 3, 7] {
        resources.push(req(&format!("C{a}"), Bool, json!({"primaryTable": "COILS", "startingAddress": a})));
    }
    driver.handle_read_commands("dev", &p, &resources).await.unwrap();
    let log = server.take_log();
    assert_eq!(
        log.iter().map(|l| (l.function, l.address, l.count)).collect::<Vec<_>>(),
        vec![(1, 0, 8), (3, 0, 20)],
        "{log:?}"
    );
    // Gaps of up to max_gap addresses are read across; longer ones are not.
    let spread = vec![hr("A", Uint16, 30), hr("B", Int32, 35), hr("C", Uint16, 42)];
    driver.handle_read_commands("dev", &p, &spread).await.unwrap();
    let log = server.take_log();
    assert_eq!(log.iter().map(|l| (l.address, l.count)).collect::<Vec<_>>(), vec![(30, 7), (42, 1)]);
    // 150 registers: 125 + 25.
    let many: Vec<CommandRequest> = (0..150).map(|a| hr(&format!("M{a}"), Uint16, a)).collect();
    assert_eq!(driver.handle_read_commands("dev", &p, &many).await.unwrap().len(), 150);
    let log = server.take_log();
    assert_eq!(log.iter().map(|l| (l.address, l.count)).collect::<Vec<_>>(), vec![(0, 125), (125, 25)]);

    // Devices sharing a server and unit share one connection, one request at a time: all of
    // them answered although pymodbus answers only one request per TCP packet.
    let p2 = server.protocols(2);
    let reads = (0..8).map(|i| {
        let (driver, p, p2, resources) = (driver.clone(), p.clone(), p2.clone(), resources.clone());
        tokio::spawn(async move {
            let protocols = if i % 2 == 0 { p } else { p2 };
            driver.handle_read_commands(&format!("dev{i}"), &protocols, &resources).await
        })
    });
    for read in futures_join(reads).await {
        assert_eq!(read.unwrap().len(), resources.len());
    }
    let units: std::collections::BTreeSet<u8> = server.take_log().iter().map(|l| l.unit).collect();
    assert_eq!(units, [1, 2].into());
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn exceptions_name_the_device_the_resources_and_the_exception() {
    let server = ModbusServer::start(&["--units", "1,2", "--fail-units", "2", "--holes", "5", "--size", "100"]);
    let driver = ModbusDriver::default();
    // A unit that answers every request with exception 4.
    let err = driver.handle_read_commands("pump", &server.protocols(2), &[hr("Speed", Uint16, 0)]).await;
    let Err(DriverError::Refused(msg)) = err else { panic!("{err:?}") };
    assert_eq!(
        msg,
        "device pump: reading HOLDING_REGISTERS 0..=0 (resource Speed): the device answered Modbus exception 0x04 \
         (Server device failure)"
    );
    let w = write_pairs(
        &driver,
        "pump",
        &server.protocols(2),
        &[hr("Speed", Uint16, 0)],
        &[CommandValue::new("Speed", Value::Uint16(1))],
    )
    .await;
    let Err(DriverError::Refused(msg)) = w else { panic!("{w:?}") };
    assert!(msg.starts_with("device pump: writing resource Speed: ") && msg.contains("0x04"), "{msg}");

    // An address the device does not have.
    let p = server.protocols(1);
    let err = driver.handle_read_commands("pump", &p, &[hr("Far", Uint32, 99)]).await;
    let Err(DriverError::Refused(msg)) = err else { panic!("{err:?}") };
    assert!(
        msg.contains("HOLDING_REGISTERS 99..=100 (resource Far)") && msg.contains("0x02 (Illegal data address)"),
        "{msg}"
    );

    // Register 5 is a hole: resources around it are joined across it, refused, then read on
    // their own; a resource on the hole is named.
    server.take_log();
    let around = vec![hr("Four", Uint16, 4), hr("Six", Uint16, 6)];
    assert_eq!(driver.handle_read_commands("pump", &p, &around).await.unwrap().len(), 2);
    let log = server.take_log();
    assert_eq!(log.iter().map(|l| (l.address, l.count)).collect::<Vec<_>>(), vec![(4, 3), (4, 1), (6, 1)]);
    let on_hole = vec![hr("Four", Uint16, 4), hr("Five", Uint16, 5), hr("Six", Uint16, 6)];
    let err = driver.handle_read_commands("pump", &p, &on_hole).await;
    let Err(DriverError::Refused(msg)) = err else { panic!("{err:?}") };
    assert!(msg.contains("HOLDING_REGISTERS 4..=6 (resources Four, Five, Six)") && msg.contains("0x02"), "{msg}");
    // The connection survives exceptions.
    assert_eq!(driver.handle_read_commands("pump", &p, &around).await.unwrap().len(), 2);
}

#[tokio::test]
async fn bad_attributes_and_properties_are_invalid_and_name_what_is_wrong() {
    let server = ModbusServer::start(&[]);
    let driver = ModbusDriver::default();
    let p = server.protocols(1);
    let cases = vec![
        (req("X", Int16, json!({"startingAddress": 1})), "device d, resource X: attribute primaryTable is missing"),
        (
            req("X", Int16, json!({"primaryTable": "HOLDING", "startingAddress": 1})),
            "device d, resource X: attribute primaryTable: \"HOLDING\"",
        ),
        (
            req("X", Int16, json!({"primaryTable": "COILS", "startingAddress": 1})),
            "device d, resource X: attribute primaryTable: COILS holds single bits",
        ),
        (
            req("X", Int16, json!({"primaryTable": "HOLDING_REGISTERS"})),
            "device d, resource X: attribute startingAddress is missing",
        ),
        (
            req("X", Int16, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 70000})),
            "device d, resource X: attribute startingAddress: 70000",
        ),
        (
            req("X", Float32, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 1, "rawType": "Int8"})),
            "device d, resource X: attribute rawType",
        ),
        (
            req("X", Int16, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 1, "isWordSwap": "maybe"})),
            "device d, resource X: attribute isWordSwap",
        ),
        (
            req(
                "X",
                String,
                json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 1, "stringRegisterSize": 200}),
            ),
            "device d, resource X: attribute stringRegisterSize",
        ),
        (
            req("X", Uint8Array, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 1})),
            "device d, resource X: valueType Uint8Array",
        ),
    ];
    server.take_log();
    for (r, want) in cases {
        let err = driver.handle_read_commands("d", &p, &[hr("Good", Uint16, 0), r.clone()]).await;
        let Err(DriverError::Invalid(msg)) = err else { panic!("{:?}: {err:?}", r.attributes) };
        assert!(msg.starts_with(want), "{msg}");
    }
    assert!(server.take_log().is_empty(), "nothing is asked of the device when a resource is invalid");
    let err =
        write_pairs(&driver, "d", &p, &[hr("S", String, 0)], &[CommandValue::new("S", Value::String("x".into()))])
            .await;
    let Err(DriverError::Invalid(msg)) = err else { panic!("{err:?}") };
    assert_eq!(msg, "device d, resource S: attribute stringRegisterSize is missing");
    let err = write_pairs(&driver, "d", &p, &[hr("I", Int16, 0)], &[CommandValue::new("I", Value::Int32(1))]).await;
    let Err(DriverError::Invalid(msg)) = err else { panic!("{err:?}") };
    assert_eq!(msg, "device d, resource I: a Int32 value was given for a Int16 resource");

    let bad = support::tcp_protocols(server.port, 1, "soon");
    let err = driver.handle_read_commands("d", &bad, &[hr("Good", Uint16, 0)]).await;
    assert_eq!(
        err,
        Err(DriverError::Invalid(
            "device d: protocol modbus-tcp, property Timeout: \"soon\" is not a number of seconds or a duration such \
             as 500ms"
                .into()
        ))
    );
    let device: oxedge_contracts::Device = serde_json::from_value(json!({
        "name": "d", "serviceName": "device-modbus", "profileName": "p", "adminState": "UNLOCKED",
        "operatingState": "UP", "protocols": {"modbus-tcp": {"Address": "127.0.0.1", "Port": "502", "UnitID": "x"}}
    }))
    .unwrap();
    let err = driver.validate_device(&device).await.unwrap_err();
    assert!(err.to_string().starts_with("device d: protocol modbus-tcp, property UnitID: \"x\""), "{err}");
    // The driver still serves the device.
    assert_eq!(driver.handle_read_commands("d", &p, &[hr("Good", Uint16, 0)]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_silent_device_times_out_a_refusing_one_fails_fast_and_both_come_back() {
    // A peer that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            kept.push(socket);
        }
    });
    let driver = ModbusDriver::new(Settings { max_backoff: "300ms".into(), ..Settings::default() });
    let p = support::tcp_protocols(port, 1, "300ms");
    let started = Instant::now();
    let err = driver.handle_read_commands("quiet", &p, &[hr("V", Uint16, 0)]).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        err,
        Err(DriverError::Timeout(
            format!("device quiet: reading HOLDING_REGISTERS 0..=0 (resource V): modbus-tcp 127.0.0.1:{port} unit 1: no answer within 300ms")
        ))
    );
    hold.abort();

    // A port bound but not listening (so that no other test takes it): connection refused,
    // then fast failures while backing off.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let p = support::tcp_protocols(port, 1, "300ms");
    let err = driver.handle_read_commands("quiet", &p, &[hr("V", Uint16, 0)]).await;
    let Err(DriverError::Failed(msg)) = err else { panic!("{err:?}") };
    assert!(msg.contains("cannot connect"), "{msg}");
    let err = driver.handle_read_commands("quiet", &p, &[hr("V", Uint16, 0)]).await;
    let Err(DriverError::Failed(msg)) = err else { panic!("{err:?}") };
    assert!(msg.contains("next attempt in"), "{msg}");
    drop(reserved);

    // A server comes up on that port: the driver connects again after its backoff.
    let mut server = ModbusServer::start(&[]);
    server.port = port;
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match driver.handle_read_commands("quiet", &p, &[hr("V", Uint16, 0)]).await {
            Ok(v) => break assert_eq!(v[0].value, Value::Uint16(0)),
            Err(e) => assert!(Instant::now() < deadline, "not back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A server killed under an open connection: the next read fails, the one after reconnects.
    server.restart();
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while driver.handle_read_commands("quiet", &p, &[hr("V", Uint16, 0)]).await.is_err() {
        failures += 1;
        assert!(Instant::now() < deadline, "no reconnection after {failures} failures");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failures <= 1, "{failures} failed reads after a restart");
}

/// Modbus RTU over a serial line: the driver opens a pseudo-terminal (tokio-serial) that socat
/// joins to pymodbus serving RTU frames over TCP, so the frames, CRCs and the serial port's
/// settings are the driver's real RTU path.
#[tokio::test]
async fn rtu_over_a_serial_line() {
    if std::process::Command::new("socat").arg("-V").output().is_err() {
        eprintln!("SKIPPED: socat is not installed (apt-get install socat); RTU is not tested");
        return;
    }
    let server = ModbusServer::start(&["--framer", "rtu", "--units", "3", "--init", r#"{"hr": {"0": [513]}}"#]);
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("ttyMODBUS");
    let mut socat = std::process::Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .arg(format!("tcp:127.0.0.1:{}", server.port))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.exists() {
        assert!(Instant::now() < deadline, "socat made no pty");
        std::thread::sleep(Duration::from_millis(20));
    }
    let p: oxedge_device_sdk::Protocols = serde_json::from_value(json!({"modbus-rtu": {
        "Address": b.to_str().unwrap(), "BaudRate": "19200", "DataBits": "8", "StopBits": "1", "Parity": "N",
        "UnitID": "3", "Timeout": "2", "IdleTimeout": "0"
    }}))
    .unwrap();
    let driver = ModbusDriver::default();
    let resources = vec![
        hr("A", Uint16, 0),
        hr("B", Int32, 2),
        req("C", Bool, json!({"primaryTable": "COILS", "startingAddress": 1})),
    ];
    let cvs = vec![CommandValue::new("B", Value::Int32(-9)), CommandValue::new("C", Value::Bool(true))];
    write_pairs(&driver, "serial", &p, &resources[1..], &cvs).await.unwrap();
    assert_eq!(
        values(driver.handle_read_commands("serial", &p, &resources).await.unwrap()),
        vec![Value::Uint16(513), Value::Int32(-9), Value::Bool(true)]
    );
    assert!(server.log().iter().all(|l| l.unit == 3));
    drop(server);
    let _ = socat.kill();
    let _ = socat.wait();
}
