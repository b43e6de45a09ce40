//! Property tests of the parsers and round trips behind the built-in functions: tag lists,
//! name lists, parameters in any case, XML of any names, compression and encryption of any
//! bytes.

use std::io::Read as _;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use oxedge_app_sdk::functions::encrypt::{decrypt, Cipher};
use oxedge_app_sdk::functions::params::de::split_list;
use oxedge_app_sdk::functions::tags::parse_tags;
use oxedge_app_sdk::functions::transform::event_to_xml;
use oxedge_app_sdk::functions::{self, Encrypt};
use oxedge_app_sdk::secrets::Secrets;
use oxedge_app_sdk::{Context, Data, Function};
use oxedge_contracts::Event;
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

fn bytes(data: Data) -> Bytes {
    match data {
        Data::Bytes { bytes, .. } => bytes,
        other => panic!("not bytes: {other:?}"),
    }
}

proptest! {
    #[test]
    fn tag_lists_round_trip(tags in proptest::collection::btree_map("[A-Za-z_][A-Za-z0-9_-]{0,12}", "[^,\\s][^,]{0,20}[^,\\s]|[^,\\s]", 0..8)) {
        let spec = tags.iter().map(|(k, v)| format!(" {k} :{v}")).collect::<Vec<_>>().join(",");
        let parsed = parse_tags(&spec).unwrap();
        let expected: Map<String, Json> = tags.iter().map(|(k, v)| (k.clone(), Json::String(v.trim().to_owned()))).collect();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn tag_parser_never_panics(spec in ".{0,200}") {
        let _ = parse_tags(&spec);
    }

    #[test]
    fn name_lists_split_like_edgex(names in proptest::collection::vec("[^,\\s]{1,10}", 0..10), pad in "[ ,]{0,3}") {
        let text = names.iter().map(|n| format!("{pad}{n}")).collect::<Vec<_>>().join(",") + &pad;
        prop_assert_eq!(split_list(&text), names);
    }

    #[test]
    fn parameters_are_read_in_any_case(upper in proptest::collection::vec(any::<bool>(), 11), filter_out in any::<bool>()) {
        let key: String = "DeviceNames".chars().zip(&upper).map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        let params = json!({key: "a,b", "FILTEROUT": filter_out.to_string()});
        let built = functions::build("FilterByDeviceName", params.as_object().unwrap()).unwrap();
        prop_assert!(built.is_ok());
    }

    #[test]
    fn any_parameter_map_is_answered_without_panicking(
        name in proptest::sample::select(functions::NAMES),
        params in proptest::collection::btree_map("[A-Za-z]{1,14}", prop_oneof![".{0,10}".prop_map(Json::String), any::<bool>().prop_map(Json::Bool), any::<i64>().prop_map(|n| json!(n))], 0..5),
    ) {
        let params: Map<String, Json> = params.into_iter().collect();
        let _ = functions::build(name, &params);
    }

    #[test]
    fn xml_is_written_for_any_text(device in "\\PC{0,40}", value in ".{0,40}", tag in "[a-zA-Z_][a-zA-Z0-9_.-]{0,8}") {
        let event: Event = serde_json::from_value(json!({
            "apiVersion": "v3", "id": "i", "deviceName": device, "profileName": "p", "sourceName": "s", "origin": 1,
            "tags": {tag.clone(): value.clone()},
            "readings": [{"resourceName": "r", "valueType": "String", "value": value}]
        })).unwrap();
        let xml = event_to_xml(&event).unwrap();
        prop_assert!(xml.starts_with("<Event>") && xml.ends_with("</Event>"));
        let opening = format!("<{tag}>");
        prop_assert!(xml.contains(&opening));
        // Markup only where the writer put it.
        prop_assert_eq!(xml.matches('<').count(), xml.matches('>').count());
    }

    #[test]
    fn compression_round_trips_any_bytes(payload in proptest::collection::vec(any::<u8>(), 0..4096), gzip in any::<bool>()) {
        let algorithm = if gzip { "gzip" } else { "zlib" };
        let compress = functions::build("Compress", json!({"Algorithm": algorithm}).as_object().unwrap()).unwrap().unwrap();
        let input = Data::Bytes { bytes: Bytes::from(payload.clone()), content_type: "application/octet-stream".into() };
        let ctx = Context::new("c", "p", Secrets::default());
        let text = bytes(runtime().block_on(compress.call(&ctx, input)).unwrap().unwrap());
        let compressed = base64::engine::general_purpose::STANDARD.decode(&text).unwrap();
        let mut out = Vec::new();
        if gzip {
            flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut out).unwrap();
        } else {
            flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut out).unwrap();
        }
        prop_assert_eq!(out, payload);
    }

    #[test]
    fn encryption_round_trips_any_bytes(payload in proptest::collection::vec(any::<u8>(), 0..2048), key in proptest::collection::vec(any::<u8>(), 64), gcm in any::<bool>()) {
        let (cipher, key) = if gcm { (Cipher::Aes256Gcm, key[..32].to_vec()) } else { (Cipher::Aes256CbcHmac, key) };
        let encrypt: Arc<dyn Function> = Arc::new(Encrypt::with_key(cipher, key.clone()).unwrap());
        let input = Data::Bytes { bytes: Bytes::from(payload.clone()), content_type: "application/octet-stream".into() };
        let ctx = Context::new("c", "p", Secrets::default());
        let text = bytes(runtime().block_on(encrypt.call(&ctx, input)).unwrap().unwrap());
        prop_assert_eq!(decrypt(cipher, &key, &text).unwrap(), payload);
    }

    #[test]
    fn decrypting_garbage_is_an_error_not_a_panic(text in proptest::collection::vec(any::<u8>(), 0..200), gcm in any::<bool>()) {
        let cipher = if gcm { Cipher::Aes256Gcm } else { Cipher::Aes256CbcHmac };
        let key = vec![7u8; cipher.key_len()];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&text);
        prop_assert!(decrypt(cipher, &key, b64.as_bytes()).is_err());
        let _ = decrypt(cipher, &key, &text);
    }
}
