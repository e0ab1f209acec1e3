//! Certificates for the TLS rows: a CA and a broker certificate for 127.0.0.1, made with
//! rcgen in the run's directory, and the librdkafka settings that trust them.

use std::path::{Path, PathBuf};

/// The files of [`make`]: the broker's PEM keystore and the CA clients trust.
pub struct Pki {
    pub keystore: PathBuf,
    pub ca: PathBuf,
}

impl Pki {
    /// The librdkafka settings (`--set` of the produce and consume children) of a client
    /// connecting over TLS.
    pub fn client_sets(&self) -> Vec<String> {
        vec![
            "security.protocol=ssl".into(),
            format!("ssl.ca.location={}", self.ca.display()),
        ]
    }
}

pub fn make(dir: &Path) -> anyhow::Result<Pki> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "weir-bench CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "weir-bench broker");
    let cert = leaf.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(dir)?;
    let pki = Pki {
        keystore: dir.join("broker.pem"),
        ca: dir.join("ca.pem"),
    };
    std::fs::write(
        &pki.keystore,
        format!("{}{}", key.serialize_pem(), cert.pem()),
    )?;
    std::fs::write(&pki.ca, ca_cert.pem())?;
    Ok(pki)
}
