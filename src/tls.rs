//! TLS for the listeners (OTLP/gRPC, OTLP/HTTP, UI) from PEM certificate files, and the one
//! crypto provider (ring) every TLS use in the process shares: listeners and webhooks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// How long a client may take over its TLS handshake before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[tls]` section. Off unless `cert_file` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the server certificate, then any intermediates; empty: no TLS.
    pub cert_file: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Serve both OTLP ports over TLS.
    pub otlp: bool,
    /// Serve the UI port over TLS.
    pub ui: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            otlp: true,
            ui: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: set both `cert_file` and `key_file`, or neither")]
    Incomplete,
    #[error("tls: cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("tls: {path} holds no PEM {what}")]
    Empty { path: String, what: &'static str },
    #[error("tls: {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("tls: the key in {key} does not fit the certificate in {cert}: {message}")]
    Mismatch {
        cert: String,
        key: String,
        message: String,
    },
}

/// Loaded certificate and key, checked to fit each other, ready for either server stack.
#[derive(Clone)]
pub struct ServerIdentity {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity").finish_non_exhaustive()
    }
}

/// Which listeners serve TLS, with what.
#[derive(Debug, Clone, Default)]
pub struct ListenerTls {
    pub otlp: Option<ServerIdentity>,
    pub ui: Option<ServerIdentity>,
}

/// Makes ring the process's crypto provider (once; later calls do nothing).
pub fn install_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Fails only if a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl TlsConfig {
    /// Whether exactly one of the two files is set.
    pub fn is_incomplete(&self) -> bool {
        self.cert_file.as_os_str().is_empty() != self.key_file.as_os_str().is_empty()
    }

    /// Loads the files when TLS is on; no identities when off.
    pub fn load(&self) -> Result<ListenerTls, TlsError> {
        if self.is_incomplete() {
            return Err(TlsError::Incomplete);
        }
        if self.cert_file.as_os_str().is_empty() {
            return Ok(ListenerTls::default());
        }
        let identity = ServerIdentity::load(&self.cert_file, &self.key_file)?;
        Ok(ListenerTls {
            otlp: self.otlp.then(|| identity.clone()),
            ui: self.ui.then_some(identity),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in a PEM file (a chain, or CA roots); an error if there is none.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certificates(path, &read(path)?)
}

fn parse_certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Invalid {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

impl ServerIdentity {
    /// Reads the certificate chain and key (each file once) and checks that they fit.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        install_provider();
        let cert_pem = read(cert_path)?;
        let certs = parse_certificates(cert_path, &cert_pem)?;
        let key_pem = read(key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| TlsError::Invalid {
            path: key_path.display().to_string(),
            message: format!("no usable private key ({err})"),
        })?;
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| TlsError::Mismatch {
                cert: cert_path.display().to_string(),
                key: key_path.display().to_string(),
                message: err.to_string(),
            })?;
        Ok(Self {
            cert_pem,
            key_pem,
            config: Arc::new(config),
        })
    }

    /// For actix (which adds its ALPN protocols to a copy).
    pub fn rustls_config(&self) -> rustls::ServerConfig {
        (*self.config).clone()
    }

    /// For tonic.
    pub fn tonic_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .timeout(HANDSHAKE_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn self_signed() -> (String, String) {
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("generate");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn off_unless_a_certificate_is_set_and_both_files_are_needed() {
        let off = TlsConfig::default().load().expect("off");
        assert!(off.otlp.is_none() && off.ui.is_none());
        let half = TlsConfig {
            cert_file: "cert.pem".into(),
            ..TlsConfig::default()
        };
        assert!(matches!(half.load(), Err(TlsError::Incomplete)));
    }

    #[test]
    fn a_fitting_pair_loads_for_the_chosen_listeners() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = self_signed();
        let config = TlsConfig {
            cert_file: write(dir.path(), "cert.pem", &cert),
            key_file: write(dir.path(), "key.pem", &key),
            otlp: false,
            ui: true,
        };
        let loaded = config.load().expect("load");
        assert!(loaded.otlp.is_none() && loaded.ui.is_some());
    }

    #[test]
    fn bad_files_say_which_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let load = |cert: &Path, key: &Path| {
            ServerIdentity::load(cert, key)
                .expect_err("must fail")
                .to_string()
        };
        let missing = dir.path().join("missing.pem");
        assert!(load(&missing, &key_path).contains("cannot read"));
        let garbage = write(dir.path(), "garbage.pem", "not a certificate");
        assert!(load(&garbage, &key_path).contains("holds no PEM certificate"));
        assert!(load(&cert_path, &garbage).contains("no usable private key"));
        let wrong = write(dir.path(), "other.pem", &other_key);
        let message = load(&cert_path, &wrong);
        assert!(message.contains("does not fit"), "{message}");
    }
}
