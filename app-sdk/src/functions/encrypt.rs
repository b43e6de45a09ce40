//! `Encrypt`: AES-256, the input's payload (see [`Data::to_payload`]) encrypted and written as
//! base64 text (`text/plain`), with one of two algorithms:
//!
//! - `aes256` — what EdgeX's `AESProtection.Encrypt` writes, so that receivers built for
//!   EdgeX decrypt it unchanged: AEAD_AES_256_CBC_HMAC_SHA_512 with a 64-byte key (the first
//!   32 bytes encrypt, the last 32 sign); output `base64(IV(16) ‖ AES-256-CBC-PKCS#7 ‖
//!   HMAC-SHA-512 truncated to 32 bytes)`, the MAC covering IV and ciphertext.
//! - `aes256-gcm` — AES-256-GCM with a 32-byte key; output `base64(nonce(12) ‖ ciphertext ‖
//!   tag(16))`, the same order (nonce first, tag last).
//!
//! The key is hex text (as EdgeX stores it), read from the secret store (`SecretName` /
//! `SecretValueKey`, looked up for each message so that a rotated key takes effect) or from a
//! file (`KeyFile`, read once at start). [`decrypt`] is the inverse, for receivers and tests.

use std::path::PathBuf;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::Aes256Gcm;
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha512;

use super::compress::CONTENT_TYPE_TEXT;
use super::params::{de, ParameterError};
use crate::{Context, Data, Function, FunctionError};

/// An encryption algorithm (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// EdgeX's `aes256`: AES-256-CBC with HMAC-SHA-512, 64-byte key.
    Aes256CbcHmac,
    /// `aes256-gcm`: AES-256-GCM, 32-byte key.
    Aes256Gcm,
}

impl Cipher {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes256CbcHmac => 64,
            Cipher::Aes256Gcm => 32,
        }
    }
}

/// `Encrypt`'s parameters, with EdgeX's names; `KeyFile` is Oxedge's addition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptSettings {
    /// `aes256` (EdgeX's format) or `aes256-gcm`.
    #[serde(rename = "Algorithm", deserialize_with = "de::text")]
    pub algorithm: String,
    /// The secret holding the key.
    #[serde(rename = "SecretName", default, deserialize_with = "de::text")]
    pub secret_name: String,
    /// The key of the secret's value that is the key (hex).
    #[serde(rename = "SecretValueKey", default, deserialize_with = "de::text")]
    pub secret_value_key: String,
    /// A file holding the key (hex), instead of the secret store.
    #[serde(rename = "KeyFile", default, deserialize_with = "de::text")]
    pub key_file: String,
}

/// Where the key comes from.
#[derive(Clone)]
enum KeySource {
    Secret { name: String, key: String },
    Fixed(Vec<u8>),
}

/// Encrypts its input and writes it as base64 text.
#[derive(Clone)]
pub struct Encrypt {
    cipher: Cipher,
    key: KeySource,
}

impl std::fmt::Debug for Encrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encrypt").field("cipher", &self.cipher).finish_non_exhaustive()
    }
}

impl Encrypt {
    /// Encryption from EdgeX's parameters; a missing or bad key source is an error naming the
    /// parameter (a key file is read and checked now).
    pub fn from_settings(settings: &EncryptSettings) -> Result<Self, ParameterError> {
        let cipher = match settings.algorithm.to_ascii_lowercase().as_str() {
            "aes256" => Cipher::Aes256CbcHmac,
            "aes256-gcm" => Cipher::Aes256Gcm,
            other => return Err(ParameterError::new("Algorithm", format!("'{other}' is not aes256 or aes256-gcm"))),
        };
        let secret = (!settings.secret_name.is_empty(), !settings.secret_value_key.is_empty());
        let key = match (secret, settings.key_file.is_empty()) {
            ((true, true), true) => {
                KeySource::Secret { name: settings.secret_name.clone(), key: settings.secret_value_key.clone() }
            }
            ((false, false), false) => {
                let path = PathBuf::from(&settings.key_file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ParameterError::new("KeyFile", format!("cannot read {}: {e}", path.display())))?;
                KeySource::Fixed(parse_key(cipher, &text).map_err(|e| ParameterError::new("KeyFile", e))?)
            }
            ((true, false), _) => return Err(ParameterError::new("SecretValueKey", "missing (SecretName is set)")),
            ((false, true), _) => return Err(ParameterError::new("SecretName", "missing (SecretValueKey is set)")),
            ((true, true), false) => {
                return Err(ParameterError::new("KeyFile", "give either KeyFile or SecretName and SecretValueKey"));
            }
            ((false, false), true) => {
                return Err(ParameterError::new(
                    "SecretName",
                    "missing (the key comes from SecretName and SecretValueKey, or KeyFile)",
                ));
            }
        };
        Ok(Self { cipher, key })
    }

    /// Encryption with `cipher` under a fixed `key` (raw bytes, [`Cipher::key_len`] long).
    pub fn with_key(cipher: Cipher, key: Vec<u8>) -> Result<Self, ParameterError> {
        if key.len() != cipher.key_len() {
            return Err(ParameterError::new("Key", format!("must be {} bytes, is {}", cipher.key_len(), key.len())));
        }
        Ok(Self { cipher, key: KeySource::Fixed(key) })
    }

    async fn key(&self, ctx: &Context) -> Result<Vec<u8>, FunctionError> {
        match &self.key {
            KeySource::Fixed(key) => Ok(key.clone()),
            KeySource::Secret { name, key } => {
                let text = ctx.secrets().value(name, key).await.map_err(|e| {
                    FunctionError::new(format!("Encrypt: no key at SecretName={name} SecretValueKey={key}: {e:#}"))
                })?;
                parse_key(self.cipher, &text).map_err(|e| {
                    FunctionError::new(format!("Encrypt: the key at SecretName={name} SecretValueKey={key} {e}"))
                })
            }
        }
    }
}

#[async_trait]
impl Function for Encrypt {
    fn name(&self) -> &str {
        "Encrypt"
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let (payload, _) = data.to_payload()?;
        let key = self.key(ctx).await?;
        let sealed = seal(self.cipher, &key, &payload)?;
        let text = base64::engine::general_purpose::STANDARD.encode(sealed);
        Ok(Some(Data::Bytes { bytes: Bytes::from(text), content_type: CONTENT_TYPE_TEXT.to_owned() }))
    }
}

/// Parses a hex key of the length `cipher` needs; the error says what is wrong, not the key.
fn parse_key(cipher: Cipher, text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let key = decode_hex(text).ok_or_else(|| "is not hex text".to_owned())?;
    if key.len() != cipher.key_len() {
        return Err(format!(
            "must be {} bytes ({} hex digits), is {} bytes",
            cipher.key_len(),
            cipher.key_len() * 2,
            key.len()
        ));
    }
    Ok(key)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

type HmacSha512 = Hmac<Sha512>;

/// EdgeX's tag: HMAC-SHA-512 over (no associated data) ‖ IV ‖ ciphertext ‖ the associated
/// data's length in bits as a big-endian u64 (zero), truncated to 32 bytes.
fn cbc_tag(mac_key: &[u8], sealed: &[u8]) -> Result<HmacSha512, FunctionError> {
    let mut mac =
        <HmacSha512 as Mac>::new_from_slice(mac_key).map_err(|e| FunctionError::new(format!("Encrypt: {e}")))?;
    mac.update(sealed);
    mac.update(&0u64.to_be_bytes());
    Ok(mac)
}

fn seal(cipher: Cipher, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, FunctionError> {
    match cipher {
        Cipher::Aes256CbcHmac => {
            let (enc_key, mac_key) = key.split_at(32);
            let mut iv = [0u8; 16];
            OsRng.fill_bytes(&mut iv);
            let encryptor = cbc::Encryptor::<aes::Aes256>::new_from_slices(enc_key, &iv)
                .map_err(|e| FunctionError::new(format!("Encrypt: {e}")))?;
            let mut sealed = iv.to_vec();
            sealed.extend(encryptor.encrypt_padded_vec_mut::<Pkcs7>(plaintext));
            let tag = cbc_tag(mac_key, &sealed)?.finalize().into_bytes();
            sealed.extend_from_slice(&tag[..32]);
            Ok(sealed)
        }
        Cipher::Aes256Gcm => {
            let aead = Aes256Gcm::new_from_slice(key).map_err(|e| FunctionError::new(format!("Encrypt: {e}")))?;
            let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
            let ciphertext =
                aead.encrypt(&nonce, plaintext).map_err(|e| FunctionError::new(format!("Encrypt: {e}")))?;
            let mut sealed = nonce.to_vec();
            sealed.extend(ciphertext);
            Ok(sealed)
        }
    }
}

/// Decrypts base64 `text` written by [`Encrypt`] with `cipher` under `key` (raw bytes); an
/// error if it was altered or the key is wrong.
pub fn decrypt(cipher: Cipher, key: &[u8], text: &[u8]) -> Result<Vec<u8>, FunctionError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| FunctionError::new(format!("decrypt: not base64: {e}")))?;
    let fail = || FunctionError::new("decrypt: authentication failed");
    if key.len() != cipher.key_len() {
        return Err(FunctionError::new(format!("decrypt: the key must be {} bytes", cipher.key_len())));
    }
    match cipher {
        Cipher::Aes256CbcHmac => {
            if sealed.len() < 16 + 16 + 32 {
                return Err(fail());
            }
            let (enc_key, mac_key) = key.split_at(32);
            let (body, tag) = sealed.split_at(sealed.len() - 32);
            cbc_tag(mac_key, body)?.verify_truncated_left(tag).map_err(|_| fail())?;
            let (iv, ciphertext) = body.split_at(16);
            cbc::Decryptor::<aes::Aes256>::new_from_slices(enc_key, iv)
                .map_err(|e| FunctionError::new(format!("decrypt: {e}")))?
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .map_err(|_| fail())
        }
        Cipher::Aes256Gcm => {
            if sealed.len() < 12 + 16 {
                return Err(fail());
            }
            let (nonce, ciphertext) = sealed.split_at(12);
            let aead = Aes256Gcm::new_from_slice(key).map_err(|e| FunctionError::new(format!("decrypt: {e}")))?;
            aead.decrypt(nonce.into(), ciphertext).map_err(|_| fail())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_parse_and_bad_ones_say_why() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("é0"), None);
        let err = parse_key(Cipher::Aes256Gcm, "00").unwrap_err();
        assert!(err.contains("32 bytes"), "{err}");
    }

    #[test]
    fn round_trips_and_tampering_is_caught() {
        for cipher in [Cipher::Aes256CbcHmac, Cipher::Aes256Gcm] {
            let key: Vec<u8> = (0..cipher.key_len() as u8).collect();
            let sealed = seal(cipher, &key, b"hello").unwrap();
            let text = base64::engine::general_purpose::STANDARD.encode(&sealed);
            assert_eq!(decrypt(cipher, &key, text.as_bytes()).unwrap(), b"hello");
            let mut bad = sealed.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let text = base64::engine::general_purpose::STANDARD.encode(&bad);
            assert!(decrypt(cipher, &key, text.as_bytes()).is_err());
        }
    }
}
