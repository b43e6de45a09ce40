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
        let refused = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
            BusError::Refused(format!("TLS {what} '{}': {e}", path.display()))
        };
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| refused("ca_file", path, &e))? {
                    let cert = cert.map_err(|e| refused("ca_file", path, &e))?;
                    roots.add(cert).map_err(|e| refused("ca_file", path, &e))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| BusError::Refused(format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert_path), Some(key_path)) => {
                let chain = CertificateDer::pem_file_iter(cert_path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| refused("cert_file", cert_path, &e))?;
                let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| refused("key_file", key_path, &e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| refused("cert_file", cert_path, &e))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(BusError::Refused(
                    "TLS cert_file and key_file must be either both provided or both missing".to_owned(),
                ))
            }
        };
        Ok(Arc::new(config))
    }
}
