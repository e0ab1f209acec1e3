//! How the operator commands secure their connections: TLS from the flags `--tls`,
//! `--ca`, `--cert`, `--key`, SASL from `--sasl-mechanism`, `--sasl-username`,
//! `--sasl-password`, or both from a Kafka client properties file (`--command-config`,
//! as Kafka's own tools take it: `security.protocol`, `ssl.truststore.location`,
//! `ssl.keystore.location` with PEM material, `sasl.mechanism`, `sasl.jaas.config`). Without a CA
//! the system's trusted roots verify the brokers; a certificate and key make it mutual
//! TLS. The broker's certificate must be valid for the host each address names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsConnector;

use super::CliError;
use crate::config::security::Pem;
use crate::sasl::{ClientSasl, Mechanism};

/// A Kafka client properties file (`key=value` or `key: value` lines, `#` comments).
fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let (k, v) = l.split_once(['=', ':'])?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

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
        let props = properties(text);
        let mut tls = ClientTls::default();
        match props
            .get("security.protocol")
            .map(|p| p.to_ascii_uppercase())
            .as_deref()
        {
            None | Some("PLAINTEXT") | Some("SASL_PLAINTEXT") => {}
            Some("SSL") | Some("SASL_SSL") => tls.enabled = true,
            Some(other) => {
                return Err(CliError::Usage(format!(
                "security.protocol={other}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
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

    /// The SASL a Kafka client properties file asks for (`security.protocol=SASL_*`,
    /// `sasl.mechanism`, `sasl.jaas.config` with `username` and `password`).
    pub fn sasl_from_properties(text: &str) -> Result<Option<ClientSasl>, CliError> {
        let props = properties(text);
        let protocol = props
            .get("security.protocol")
            .map(|p| p.to_ascii_uppercase());
        if !protocol.as_deref().is_some_and(|p| p.starts_with("SASL_")) {
            return Ok(None);
        }
        // Kafka clients default to GSSAPI, which weir does not speak.
        let name = props.get("sasl.mechanism").map_or("GSSAPI", String::as_str);
        let mechanism = Mechanism::parse(name).ok_or_else(|| {
            CliError::Usage(format!(
                "sasl.mechanism={name}: expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
            ))
        })?;
        let jaas = props.get("sasl.jaas.config").ok_or_else(|| {
            CliError::Usage(
                "security.protocol is SASL: give sasl.jaas.config with username and password"
                    .into(),
            )
        })?;
        let module = crate::sasl::jaas::parse(jaas)
            .map_err(|e| CliError::Usage(format!("sasl.jaas.config: {e}")))?;
        let (user, password) = module.credentials().ok_or_else(|| {
            CliError::Usage("sasl.jaas.config needs username=\"...\" and password=\"...\"".into())
        })?;
        Ok(Some(ClientSasl {
            mechanism,
            user,
            password,
        }))
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
            "security.protocol=SASL_SSLX",
            "security.protocol=SSL\nssl.truststore.type=JKS",
        ] {
            assert!(
                matches!(ClientTls::from_properties(bad), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn sasl_client_properties_are_read() {
        let props = "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
            sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";\n";
        let sasl = ClientTls::sasl_from_properties(props).unwrap().unwrap();
        assert_eq!(sasl.user, "alice");
        assert_eq!(sasl.password, "s3cret");
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert!(ClientTls::from_properties(props).unwrap().enabled);
        assert_eq!(
            ClientTls::sasl_from_properties("security.protocol=SSL").unwrap(),
            None
        );
        for bad in [
            "security.protocol=SASL_PLAINTEXT",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=x required;",
        ] {
            assert!(
                matches!(
                    ClientTls::sasl_from_properties(bad),
                    Err(CliError::Usage(_))
                ),
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
