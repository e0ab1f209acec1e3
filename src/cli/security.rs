//! How the operator commands secure their connections: TLS from the flags `--tls`,
//! `--ca`, `--cert`, `--key`, or from a Kafka client properties file
//! (`--command-config`, as Kafka's own tools take it: `security.protocol=SSL`,
//! `ssl.truststore.location`, `ssl.keystore.location` with PEM material). Without a CA
//! the system's trusted roots verify the brokers; a certificate and key make it mutual
//! TLS. The broker's certificate must be valid for the host each address names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsConnector;

use super::CliError;
use crate::config::security::Pem;

/// What the flags and the properties file ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientTls {
    pub enabled: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub key_password: Option<String>,
}

impl ClientTls {
    /// Reads a Kafka client properties file; the flags given override it.
    pub fn from_properties(text: &str) -> Result<ClientTls, CliError> {
        let props: BTreeMap<String, String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .filter_map(|l| {
                let (k, v) = l.split_once(['=', ':'])?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let mut tls = ClientTls::default();
        match props
            .get("security.protocol")
            .map(|p| p.to_ascii_uppercase())
            .as_deref()
        {
            None | Some("PLAINTEXT") => {}
            Some("SSL") => tls.enabled = true,
            Some(other) => {
                return Err(CliError::Usage(format!(
                "security.protocol={other} is not supported by weir's commands (PLAINTEXT or SSL)"
            )))
            }
        }
        for store in ["ssl.truststore.type", "ssl.keystore.type"] {
            if let Some(t) = props.get(store) {
                if !t.eq_ignore_ascii_case("PEM") {
                    return Err(CliError::Usage(format!(
                        "{store}={t}: only PEM files are read"
                    )));
                }
            }
        }
        tls.ca = props.get("ssl.truststore.location").map(PathBuf::from);
        // Kafka's PEM keystore holds the key and the chain in one file.
        if let Some(ks) = props.get("ssl.keystore.location") {
            tls.cert = Some(PathBuf::from(ks));
            tls.key = Some(PathBuf::from(ks));
        }
        tls.key_password = props.get("ssl.key.password").cloned();
        Ok(tls)
    }

    /// The connector, when TLS is on.
    pub fn connector(&self) -> Result<Option<TlsConnector>, CliError> {
        if !self.enabled {
            return Ok(None);
        }
        let usage = |what: &str, e: String| CliError::Usage(format!("{what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for cert in crate::tls::certificates(&Pem::File(ca.clone()))
                    .map_err(|e| usage("--ca", e))?
                {
                    roots.add(cert).map_err(|e| usage("--ca", e.to_string()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(CliError::Usage(
                        "no trusted CA certificates on this system: give --ca".into(),
                    ));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| usage("TLS", e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain: Vec<CertificateDer<'static>> =
                    crate::tls::certificates(&Pem::File(cert.clone()))
                        .map_err(|e| usage("--cert", e))?;
                let key: PrivateKeyDer<'static> =
                    crate::tls::private_key(&Pem::File(key.clone()), self.key_password.as_deref())
                        .map_err(|e| usage("--key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| usage("--cert/--key", e.to_string()))?
            }
            _ => {
                return Err(CliError::Usage(
                    "a client certificate needs both --cert and --key".into(),
                ))
            }
        };
        Ok(Some(TlsConnector::from(Arc::new(config))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_client_properties_are_read() {
        let tls = ClientTls::from_properties(
            "# admin.properties\nsecurity.protocol=SSL\nssl.truststore.type=PEM\n\
             ssl.truststore.location=/etc/ca.pem\nssl.keystore.type = PEM\n\
             ssl.keystore.location=/etc/alice.pem\n",
        )
        .unwrap();
        assert!(tls.enabled);
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(tls.cert, Some(PathBuf::from("/etc/alice.pem")));
        assert_eq!(tls.key, tls.cert);
        assert_eq!(
            ClientTls::from_properties("").unwrap(),
            ClientTls::default()
        );
        for bad in [
            "security.protocol=SASL_SSL",
            "security.protocol=SSL\nssl.truststore.type=JKS",
        ] {
            assert!(
                matches!(ClientTls::from_properties(bad), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_missing_ca_file_is_a_usage_error() {
        let tls = ClientTls {
            enabled: true,
            ca: Some("/nonexistent/ca.pem".into()),
            ..ClientTls::default()
        };
        assert!(matches!(tls.connector(), Err(CliError::Usage(_))));
        assert!(ClientTls::default().connector().unwrap().is_none());
    }
}
