//! TLS on listeners, with rustls and its aws-lc-rs crypto provider chosen explicitly:
//! the listeners clients connect to, the inter-broker listener followers fetch on, and
//! the CONTROLLER listener that carries Raft and broker heartbeats. For the last two this
//! node is also the client, with its own certificate (mutual TLS between nodes).
//!
//! A listener's server configuration is built from its resolved `ssl.*` settings
//! ([`TlsSettings`]): the PEM keystore (private key, possibly encrypted PKCS#8 with
//! `ssl.key.password`, and certificate chain), the PEM truststore that signs client
//! certificates, client authentication none / requested / required, TLS 1.2 and 1.3
//! only (narrowed by `ssl.enabled.protocols`), and optionally the cipher suites by their
//! IANA names. The files are watched: at most once a second a new connection checks
//! their size and modification time, and a change rebuilds the configuration, so
//! certificates rotate without a restart (new connections get the new certificate; live
//! ones keep theirs). A rebuild that fails keeps the previous configuration and logs why.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};
use tracing::{info, warn};

use crate::config::security::{ClientAuth, Pem, TlsSettings, TlsVersion};
use crate::metrics as m;

/// How often a new connection may look at the certificate files for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// How long a peer may take over its TLS handshake before the socket is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("TLS on listener {listener}: {reason}")]
pub struct TlsError {
    pub listener: String,
    pub reason: String,
}

/// The TLS side of one listener: the current acceptor, rebuilt when its files change.
pub struct TlsListener {
    settings: TlsSettings,
    current: parking_lot::Mutex<Loaded>,
    /// `ssl.principal.mapping.rules`, compiled.
    principal_rules: Vec<crate::principal::Rule>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("listener", &self.settings.listener)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    acceptor: TlsAcceptor,
    /// The client side, for brokers fetching from each other on this listener: built
    /// when the listener has a truststore to verify the other brokers with.
    connector: Option<TlsConnector>,
    /// (file, its size and modification time when read).
    stamps: Vec<(PathBuf, Option<(u64, SystemTime)>)>,
    checked: Instant,
    /// When the first certificate of the keystore chain expires (notAfter, Unix seconds).
    not_after: Option<i64>,
}

impl TlsListener {
    /// Reads the listener's certificates and keys; fails (and the broker does not start)
    /// when they are missing or do not fit together.
    pub fn new(settings: TlsSettings) -> Result<TlsListener, TlsError> {
        let loaded = load(&settings)?;
        let principal_rules =
            crate::principal::parse_rules(&settings.principal_rules).map_err(|reason| {
                TlsError {
                    listener: settings.listener.clone(),
                    reason: format!("ssl.principal.mapping.rules: {reason}"),
                }
            })?;
        Ok(TlsListener {
            settings,
            current: parking_lot::Mutex::new(loaded),
            principal_rules,
        })
    }

    /// The principal of a connection whose client presented `chain` (none:
    /// `User:ANONYMOUS`); an error when no mapping rule applies to its name.
    pub fn principal(&self, chain: Option<&[CertificateDer<'_>]>) -> Result<String, String> {
        let Some(leaf) = chain.and_then(|c| c.first()) else {
            return Ok(crate::principal::ANONYMOUS.to_string());
        };
        let dn = crate::principal::subject_dn(leaf.as_ref())
            .ok_or("the client certificate cannot be parsed")?;
        crate::principal::map_name(&self.principal_rules, &dn)
            .map(|name| format!("User:{name}"))
            .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to {dn}"))
    }

    pub fn listener(&self) -> &str {
        &self.settings.listener
    }

    /// The acceptor for a new connection, after rebuilding it if a file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.reloaded().acceptor.clone()
    }

    /// The connector for a connection to another broker's listener of the same name
    /// (this broker's certificate as the client's, the truststore to verify theirs);
    /// `None` without a truststore.
    pub fn connector(&self) -> Option<TlsConnector> {
        self.reloaded().connector.clone()
    }

    /// When the keystore's certificate chain stops being valid: the earliest notAfter of
    /// its certificates, in Unix seconds (after looking for a rotated file).
    pub fn expires_at(&self) -> Option<i64> {
        self.reloaded().not_after
    }

    fn reloaded(&self) -> parking_lot::MutexGuard<'_, Loaded> {
        let mut current = self.current.lock();
        if current.checked.elapsed() >= RELOAD_CHECK {
            current.checked = Instant::now();
            let changed = current
                .stamps
                .iter()
                .any(|(path, stamp)| file_stamp(path) != *stamp);
            if changed {
                match load(&self.settings) {
                    Ok(loaded) => {
                        info!(listener = %self.settings.listener, "TLS certificates changed; new connections use them");
                        *current = loaded;
                    }
                    Err(e) => {
                        // Keep serving with what worked; look again at the next check.
                        warn!(error = %e, "cannot reload TLS certificates; keeping the previous ones");
                        current.stamps = stamps(&self.settings);
                    }
                }
            }
        }
        current
    }
}

fn load(settings: &TlsSettings) -> Result<Loaded, TlsError> {
    // Stamped before reading: a change while reading is seen at the next check.
    let stamps = stamps(settings);
    let config = server_config(settings)?;
    let connector = match settings.truststore {
        Some(_) => Some(TlsConnector::from(Arc::new(client_config(settings)?))),
        None => None,
    };
    let not_after = certificates(&settings.certificate_chain)
        .ok()
        .and_then(|chain| earliest_not_after(&chain));
    Ok(Loaded {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        connector,
        stamps,
        checked: Instant::now(),
        not_after,
    })
}

/// The earliest notAfter (Unix seconds) of `chain`; `None` if none parses.
fn earliest_not_after(chain: &[CertificateDer<'_>]) -> Option<i64> {
    chain
        .iter()
        .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

/// The server side of a connection's handshake on `listener`. A failed or stalled
/// handshake is counted by reason, logged with the peer's address, and `None` is
/// returned (dropping the socket closes it).
pub async fn accept(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    listener: &str,
) -> Option<server::TlsStream<TcpStream>> {
    let failed = |reason: &'static str, detail: String| {
        metrics::counter!(m::TLS_HANDSHAKE_FAILURES_TOTAL, "listener" => listener.to_string(), "reason" => reason)
            .increment(1);
        warn!(%peer, %listener, error = %detail, "TLS handshake failed; closing the connection");
        None
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => failed(failure_reason(&e), e.to_string()),
        Err(_) => failed(
            "timeout",
            format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
        ),
    }
}

/// The client side of a handshake with the node at `addr` (`host:port`): its
/// certificate must be valid for `host`. Bounded by [`HANDSHAKE_TIMEOUT`].
pub async fn connect(
    connector: &TlsConnector,
    addr: &str,
    stream: TcpStream,
) -> io::Result<client::TlsStream<TcpStream>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no TLS handshake with {addr} within {HANDSHAKE_TIMEOUT:?}"),
        )),
    }
}

/// A metric label for why a handshake failed.
pub fn failure_reason(e: &io::Error) -> &'static str {
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return "io";
    };
    match inner {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            "certificate"
        }
        rustls::Error::PeerIncompatible(_) => "incompatible",
        _ => "protocol",
    }
}

fn stamps(settings: &TlsSettings) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
    let mut files = Vec::new();
    for pem in [
        Some(&settings.certificate_chain),
        Some(&settings.private_key),
        settings.truststore.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if let Pem::File(path) = pem {
            if !files.iter().any(|(p, _)| p == path) {
                files.push((path.clone(), file_stamp(path)));
            }
        }
    }
    files
}

fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The rustls server configuration of a listener.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let err = |reason: String| TlsError {
        listener: settings.listener.clone(),
        reason,
    };
    let provider = Arc::new(provider(settings).map_err(err)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings))
        .map_err(|e| err(format!("ssl.enabled.protocols with ssl.cipher.suites: {e}")))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let pem = settings
                .truststore
                .as_ref()
                .ok_or_else(|| err("client authentication needs a truststore".into()))?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(pem).map_err(|e| err(format!("truststore: {e}")))? {
                roots
                    .add(cert)
                    .map_err(|e| err(format!("truststore certificate: {e}")))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| err(format!("truststore: {e}")))?,
            )
        }
    };
    let chain =
        certificates(&settings.certificate_chain).map_err(|e| err(format!("keystore: {e}")))?;
    let key = private_key(&settings.private_key, settings.key_password.as_deref())
        .map_err(|e| err(format!("keystore private key: {e}")))?;
    builder
        .with_single_cert(chain, key)
        .map_err(|e| err(format!("keystore: {e}")))
}

/// The rustls client configuration for connections to other brokers on a listener: the
/// truststore verifies their certificates (and that they are valid for the address
/// dialled), this broker's keystore is its client certificate.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    let err = |reason: String| TlsError {
        listener: settings.listener.clone(),
        reason,
    };
    let provider = Arc::new(provider(settings).map_err(err)?);
    let pem = settings.truststore.as_ref().ok_or_else(|| {
        err("other brokers are verified with the truststore: give ssl.truststore.location".into())
    })?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem).map_err(|e| err(format!("truststore: {e}")))? {
        roots
            .add(cert)
            .map_err(|e| err(format!("truststore certificate: {e}")))?;
    }
    let chain =
        certificates(&settings.certificate_chain).map_err(|e| err(format!("keystore: {e}")))?;
    let key = private_key(&settings.private_key, settings.key_password.as_deref())
        .map_err(|e| err(format!("keystore private key: {e}")))?;
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(settings))
        .map_err(|e| err(format!("ssl.enabled.protocols with ssl.cipher.suites: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| err(format!("keystore: {e}")))
}

fn versions(settings: &TlsSettings) -> Vec<&'static SupportedProtocolVersion> {
    settings
        .versions
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// The aws-lc-rs provider, with only the cipher suites `ssl.cipher.suites` names (IANA names;
/// rustls calls the TLS 1.3 ones `TLS13_*`).
fn provider(settings: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if settings.cipher_suites.is_empty() {
        return Ok(provider);
    }
    let iana =
        |s: &rustls::SupportedCipherSuite| format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1);
    for name in &settings.cipher_suites {
        if !provider.cipher_suites.iter().any(|s| iana(s) == *name) {
            let known: Vec<String> = provider.cipher_suites.iter().map(iana).collect();
            return Err(format!(
                "ssl.cipher.suites: unknown or unsupported suite {name} (supported: {})",
                known.join(", ")
            ));
        }
    }
    provider
        .cipher_suites
        .retain(|s| settings.cipher_suites.contains(&iana(s)));
    Ok(provider)
}

fn pem_bytes(pem: &Pem) -> io::Result<Vec<u8>> {
    match pem {
        Pem::File(path) => std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
    }
}

fn where_from(pem: &Pem) -> String {
    match pem {
        Pem::File(path) => path.display().to_string(),
        Pem::Inline(_) => "the inline PEM".to_string(),
    }
}

/// Every certificate of a PEM source (other sections, such as a key, are skipped).
pub fn certificates(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = pem_bytes(pem).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", where_from(pem)))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE in it", where_from(pem)));
    }
    Ok(certs)
}

/// The private key of a PEM source: PKCS#8, PKCS#1 (RSA) or SEC1 (EC); an
/// `ENCRYPTED PRIVATE KEY` (PKCS#8) is decrypted with `password`.
pub fn private_key(pem: &Pem, password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = pem_bytes(pem).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    if let Some(block) = pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        let password = password.ok_or_else(|| {
            format!(
                "{}: the key is encrypted: give ssl.key.password",
                where_from(pem)
            )
        })?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(block)
            .map_err(|e| format!("{}: {e}", where_from(pem)))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| format!("{}: {e}", where_from(pem)))?;
        let key = info.decrypt(password).map_err(|_| {
            format!(
                "{}: cannot decrypt the key with ssl.key.password",
                where_from(pem)
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{}: no PRIVATE KEY in it", where_from(pem))
        }
        e => format!("{}: {e}", where_from(pem)),
    })
}

/// The whole `-----BEGIN <label>----- … -----END <label>-----` block of `text`, if any.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, days: i64) -> TlsSettings {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        leaf.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let keystore = dir.join("keystore.pem");
        std::fs::write(&keystore, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        crate::config::security::tls_settings("SSL", |name| match name {
            "ssl.keystore.location" => Some(keystore.display().to_string()),
            "ssl.truststore.location" => Some(dir.join("ca.pem").display().to_string()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn the_expiry_is_the_keystore_certificates_not_after_and_follows_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsListener::new(settings(dir.path(), 10)).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let left = tls.expires_at().unwrap() - now;
        assert!((9 * 86400..=10 * 86400 + 60).contains(&left), "{left}");
        assert!(tls.connector().is_some(), "a truststore makes a connector");
        // A new keystore file (new size or mtime) is read at the next check.
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        settings(dir.path(), 90);
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        let left = tls.expires_at().unwrap() - now;
        assert!((89 * 86400..=90 * 86400 + 60).contains(&left), "{left}");
    }

    #[test]
    fn handshake_failures_are_labelled_by_cause() {
        let io = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(failure_reason(&io), "io");
        let cert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::NoCertificatesPresented,
        );
        assert_eq!(failure_reason(&cert), "certificate");
        let garbage = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert_eq!(failure_reason(&garbage), "protocol");
    }
}
