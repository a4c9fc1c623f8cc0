//! A throwaway certificate authority for TLS tests: a CA, and a server certificate it signed
//! for `localhost` and `127.0.0.1`, written as PEM files the way an operator would have them.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate clients are told to trust.
    pub ca_file: PathBuf,
    pub ca_pem: String,
    /// The server's certificate and key, for `[tls]`.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Cartograph test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "cartograph");
        // What strict verifiers (Python 3.13's default X509_STRICT) look for.
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");

        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        let ca_pem = ca_cert.pem();
        Self {
            ca_file: write("ca.pem", &ca_pem),
            cert_file: write("server.pem", &cert.pem()),
            key_file: write("server-key.pem", &key.serialize_pem()),
            ca_pem,
            _dir: dir,
        }
    }

    /// A reqwest client trusting this CA only.
    pub fn client(&self) -> reqwest::Client {
        cartograph::tls::install_provider();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA")])
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client")
    }
}
