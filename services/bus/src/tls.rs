//! TLS client settings shared by the MQTT and NATS backends.
//!
//! The rustls configuration is built here with an explicit crypto provider (ring): the
//! client crates' own builders rely on a process-wide default provider, which does not
//! exist when more than one provider is linked in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde::{Deserialize, Serialize};

use crate::BusError;

/// Files for a TLS connection to the broker. Without `ca_file`, the broker's certificate
/// must be signed by one of the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM file of the certificate authorities the broker's certificate is checked against.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of this client's certificate chain, for brokers that authenticate clients by certificate.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// The rustls client configuration these files describe.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, BusError> {
        let read = |key: &str, path: &Path| {
            std::fs::read(path).map_err(|e| BusError::Refused(format!("TLS {key} '{}': {e}", path.display())))
        };
        let ca = self.ca_file.as_deref().map(|path| read("ca_file", path)).transpose()?;
        let client = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((read("cert_file", cert)?, read("key_file", key)?)),
            (None, None) => None,
            _ => {
                return Err(BusError::Refused(
                    "TLS cert_file and key_file must be either both provided or both missing".to_owned(),
                ))
            }
        };
        let client = client.as_ref().map(|(cert, key)| (cert.as_slice(), key.as_slice()));
        client_config(ca.as_deref(), client, false).map_err(|e| {
            let (key, path) = match e.part {
                TlsPart::Ca => ("ca_file", &self.ca_file),
                TlsPart::ClientCert => ("cert_file", &self.cert_file),
                TlsPart::ClientKey => ("key_file", &self.key_file),
                TlsPart::Roots | TlsPart::Protocol => return BusError::Refused(format!("TLS: {}", e.message)),
            };
            let path = path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
            BusError::Refused(format!("TLS {key} '{path}': {}", e.message))
        })
    }
}

/// Which part of a TLS client configuration is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPart {
    /// The certificate authorities given.
    Ca,
    /// The system's root certificates (no CA given).
    Roots,
    /// The client's certificate chain.
    ClientCert,
    /// The client's private key.
    ClientKey,
    /// The protocol versions of the crypto provider.
    Protocol,
}

/// A TLS client configuration that cannot be built; the caller names the setting of `part`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    /// What is wrong.
    pub part: TlsPart,
    /// Why.
    pub message: String,
}

fn tls_error(part: TlsPart) -> impl Fn(&dyn std::fmt::Display) -> TlsError {
    move |e| TlsError { part, message: e.to_string() }
}

/// The one rustls client configuration of Oxedge (ring provider, safe protocol versions):
/// trusting the PEM certificates `ca`, else the system's roots; presenting the PEM `client`
/// chain and key when given; checking no certificate at all with `skip_verify` (EdgeX's
/// `SkipVerify`; signatures are still checked). A CA text without a certificate, or a
/// system without root certificates, is an error rather than a handshake that always fails.
pub fn client_config(
    ca: Option<&[u8]>,
    client: Option<(&[u8], &[u8])>,
    skip_verify: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(TlsPart::Protocol)(&e))?;
    let builder = if skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match ca {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| tls_error(TlsPart::Ca)(&e))?;
                    roots.add(cert).map_err(|e| tls_error(TlsPart::Ca)(&e))?;
                }
                if roots.is_empty() {
                    return Err(tls_error(TlsPart::Ca)(&"no PEM certificate in it"));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    let why = native.errors.first().map(ToString::to_string).unwrap_or_default();
                    return Err(tls_error(TlsPart::Roots)(&format!(
                        "no system root certificate found ({why}); give the broker's CA"
                    )));
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(TlsPart::ClientCert)(&e))?;
            if chain.is_empty() {
                return Err(tls_error(TlsPart::ClientCert)(&"no PEM certificate in it"));
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_error(TlsPart::ClientKey)(&e))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| tls_error(TlsPart::ClientCert)(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `SkipVerify`: any certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = include_bytes!("../testdata/test-ca.pem");
    const KEY: &[u8] = include_bytes!("../testdata/test-ca.key");

    fn part(result: Result<Arc<ClientConfig>, TlsError>) -> TlsPart {
        result.expect_err("refused").part
    }

    #[test]
    fn builds_from_pem_texts() {
        assert!(client_config(Some(CERT), None, false).is_ok());
        assert!(client_config(Some(CERT), Some((CERT, KEY)), false).is_ok());
        assert!(client_config(None, None, true).is_ok(), "skip_verify needs no CA");
    }

    #[test]
    fn each_bad_part_is_named() {
        assert_eq!(part(client_config(Some(b"not a certificate"), None, false)), TlsPart::Ca);
        assert_eq!(part(client_config(Some(KEY), None, false)), TlsPart::Ca, "a key is not a CA");
        assert_eq!(part(client_config(Some(CERT), Some((b"", KEY)), false)), TlsPart::ClientCert);
        assert_eq!(part(client_config(Some(CERT), Some((CERT, b"garbage")), false)), TlsPart::ClientKey);
    }

    #[test]
    fn files_are_named_by_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let files = TlsFiles { ca_file: Some(empty.clone()), ..TlsFiles::default() };
        let error = files.client_config().expect_err("refused").to_string();
        assert!(error.contains("ca_file") && error.contains("empty.pem"), "{error}");
        let files = TlsFiles { cert_file: Some(empty), ..TlsFiles::default() };
        let error = files.client_config().expect_err("refused").to_string();
        assert!(error.contains("both provided"), "{error}");
    }
}
