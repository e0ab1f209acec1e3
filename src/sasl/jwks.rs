//! The verification keys of OAUTHBEARER listeners: a JSON Web Key Set read from a file
//! or fetched from the identity provider's endpoint (`sasl.oauthbearer.jwks.endpoint.url`,
//! `file:`, `https:` or `http:`), kept in memory so a token is checked without I/O, and
//! refreshed in the background: an endpoint every `sasl.oauthbearer.jwks.endpoint.refresh.ms`
//! and soon after a token names a key id the set lacks (the provider rotated its keys),
//! a file whenever it changes. A failed refresh keeps the keys already loaded and is
//! retried with backoff (`…retry.backoff.ms` doubling up to `…retry.backoff.max.ms`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use parking_lot::RwLock;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::metrics as m;

/// The largest key set accepted from an endpoint or a file.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long a fetch may take before it counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A file source is checked for changes this often.
const FILE_POLL: Duration = Duration::from_secs(1);
/// Refreshes asked for by tokens with unknown key ids are at most this frequent.
const MIN_REFRESH_ON_UNKNOWN_KID: Duration = Duration::from_secs(2);

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(p) => write!(f, "file:{}", p.display()),
            JwksSource::Url(u) => f.write_str(u),
        }
    }
}

impl JwksSource {
    /// `file:/path` (or `file:///path`), `https://…` or `http://…`.
    pub fn parse(url: &str) -> Result<JwksSource, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("file: URL without a path".into());
            }
            return Ok(JwksSource::File(PathBuf::from(path)));
        }
        let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("https") | Some("http") if uri.host().is_some() => {
                Ok(JwksSource::Url(url.to_string()))
            }
            _ => Err("expected a file:, https: or http: URL".into()),
        }
    }
}

/// How often and how persistently the set is refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub every: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
}

/// One usable key.
pub struct VerificationKey {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

/// The keys of one loaded set.
#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<VerificationKey>,
}

impl KeySet {
    /// Parses a JWKS document. Keys Weir cannot verify with (symmetric, encryption-only,
    /// unknown types or curves) are skipped; a set with no usable key is an error.
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
        let entries = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("not a JWKS: no \"keys\" array")?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match usable_key(entry) {
                Ok(k) => keys.push(k),
                Err(why) => skipped.push(format!("key {i}: {why}")),
            }
        }
        if keys.is_empty() {
            return Err(format!("no usable signing key ({})", skipped.join("; ")));
        }
        if !skipped.is_empty() {
            warn!(skipped = %skipped.join("; "), "JWKS keys skipped");
        }
        Ok(KeySet { keys })
    }

    /// The keys that may have signed a token with `kid` (if it names one) and `alg`.
    pub fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&VerificationKey> {
        self.keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.algorithms.contains(&alg))
            .collect()
    }
}

fn usable_key(entry: &serde_json::Value) -> Result<VerificationKey, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| format!("malformed: {e}"))?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("not a signing key (use)".into());
    }
    let family_algorithms: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms().to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            ref c => return Err(format!("unsupported curve {c:?}")),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        AlgorithmParameters::OctetKey(_) => return Err("symmetric key".into()),
        _ => return Err("unsupported key type".into()),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family_algorithms,
        Some(a) => {
            let a = <Algorithm as std::str::FromStr>::from_str(&format!("{a:?}"))
                .map_err(|_| format!("unsupported algorithm {a:?}"))?;
            if !family_algorithms.contains(&a) {
                return Err(format!("algorithm {a:?} does not fit the key type"));
            }
            vec![a]
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable: {e}"))?;
    Ok(VerificationKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}

/// The current key set of one source, and what refreshes it.
pub struct KeyStore {
    source: JwksSource,
    refresh: Refresh,
    keys: RwLock<Option<Arc<KeySet>>>,
    wanted: Notify,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub fn new(source: JwksSource, refresh: Refresh) -> KeyStore {
        KeyStore {
            source,
            refresh,
            keys: RwLock::new(None),
            wanted: Notify::new(),
        }
    }

    /// A store with a set already loaded (tests, and files read at start).
    pub fn with_keys(source: JwksSource, refresh: Refresh, keys: KeySet) -> KeyStore {
        let store = KeyStore::new(source, refresh);
        store.install(keys);
        store
    }

    pub fn source(&self) -> &JwksSource {
        &self.source
    }

    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().clone()
    }

    /// A token named a key the set lacks: refresh soon.
    pub fn request_refresh(&self) {
        self.wanted.notify_one();
    }

    fn install(&self, keys: KeySet) {
        metrics::gauge!(m::OAUTH_JWKS_KEYS, "source" => self.source.to_string())
            .set(keys.keys.len() as f64);
        *self.keys.write() = Some(Arc::new(keys));
    }

    /// Reads a file source now (at start, so a wrong path stops the broker).
    pub fn load_file_now(&self) -> Result<(), String> {
        let JwksSource::File(path) = &self.source else {
            return Ok(());
        };
        match read_file(path).and_then(|b| KeySet::parse(&b)) {
            Ok(keys) => {
                info!(source = %self.source, keys = keys.keys.len(), "JWKS loaded");
                metrics::counter!(m::OAUTH_JWKS_REFRESHES_TOTAL, "result" => "ok").increment(1);
                self.install(keys);
                Ok(())
            }
            Err(e) => {
                metrics::counter!(m::OAUTH_JWKS_REFRESHES_TOTAL, "result" => "error").increment(1);
                Err(e)
            }
        }
    }

    /// Keeps the set fresh until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.refresh.retry_backoff;
        let mut stamp = file_stamp(&self.source);
        let mut last_attempt: Option<Instant> = None;
        let mut due = self.current().is_none();
        loop {
            if due {
                last_attempt = Some(Instant::now());
                match self.fetch().await.and_then(|b| KeySet::parse(&b)) {
                    Ok(keys) => {
                        info!(source = %self.source, keys = keys.keys.len(), "JWKS loaded");
                        metrics::counter!(m::OAUTH_JWKS_REFRESHES_TOTAL, "result" => "ok")
                            .increment(1);
                        self.install(keys);
                        backoff = self.refresh.retry_backoff;
                        due = false;
                    }
                    Err(e) => {
                        warn!(source = %self.source, error = %e, retry_in_ms = backoff.as_millis() as u64, "JWKS refresh failed; keeping the keys already loaded");
                        metrics::counter!(m::OAUTH_JWKS_REFRESHES_TOTAL, "result" => "error")
                            .increment(1);
                    }
                }
            }
            // A deadline, not a sleep restarted on every wake-up, so a stream of tokens
            // with unknown key ids cannot postpone the scheduled check.
            let mut next = tokio::time::Instant::now()
                + match (&self.source, due) {
                    (_, true) => {
                        let w = backoff;
                        backoff = (backoff * 2).min(self.refresh.retry_backoff_max);
                        w
                    }
                    (JwksSource::File(_), false) => FILE_POLL,
                    (JwksSource::Url(_), false) => self.refresh.every,
                };
            if due {
                // The attempt failed: try again after the backoff.
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => continue,
                    _ = shutdown.changed() => return,
                }
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {
                        match &self.source {
                            JwksSource::File(_) => {
                                let now = file_stamp(&self.source);
                                due = now != stamp;
                                stamp = now;
                            }
                            JwksSource::Url(_) => due = true,
                        }
                        break;
                    }
                    _ = self.wanted.notified() => {
                        // Bounded, so tokens with made-up key ids cannot hammer the
                        // provider: a request soon after a fetch waits for its turn.
                        if let (JwksSource::Url(_), Some(t)) = (&self.source, last_attempt) {
                            let turn = tokio::time::Instant::from_std(t + MIN_REFRESH_ON_UNKNOWN_KID);
                            if turn <= tokio::time::Instant::now() {
                                due = true;
                                break;
                            }
                            next = next.min(turn);
                        }
                    }
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            JwksSource::File(path) => read_file(path),
            JwksSource::Url(url) => tokio::time::timeout(FETCH_TIMEOUT, http_get(url))
                .await
                .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?,
        }
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_JWKS_BYTES as u64 {
        return Err(format!(
            "{}: larger than {MAX_JWKS_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn file_stamp(source: &JwksSource) -> Option<(SystemTime, u64)> {
    let JwksSource::File(path) = source else {
        return None;
    };
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// One GET of the endpoint: HTTP/1.1 through hyper, TLS through rustls with the
/// system's CA certificates (`SSL_CERT_FILE` names others).
async fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((bare_host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let request = hyper::Request::get(path)
        .header(
            // host[:port] only: never the URL's user:password@ part.
            hyper::header::HOST,
            match uri.port_u16() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            },
        )
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    if https {
        let name = rustls_pki_types::ServerName::try_from(bare_host)
            .map_err(|e| format!("server name {host}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(https_client_config()?))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        send(tls, request).await
    } else {
        send(tcp, request).await
    }
}

async fn send<S>(stream: S, request: hyper::Request<Empty<Bytes>>) -> Result<Vec<u8>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    conn.abort();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(body.to_vec())
}

fn https_client_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        return Err("no trusted CA certificates on this system (set SSL_CERT_FILE)".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_files_or_web_addresses() {
        assert_eq!(
            JwksSource::parse("file:///etc/weir/jwks.json").unwrap(),
            JwksSource::File("/etc/weir/jwks.json".into())
        );
        assert_eq!(
            JwksSource::parse("file:jwks.json").unwrap(),
            JwksSource::File("jwks.json".into())
        );
        assert!(JwksSource::parse("https://idp.example/.well-known/jwks.json").is_ok());
        for bad in ["", "file:", "ftp://x/y", "idp.example/jwks", "https://"] {
            assert!(JwksSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unusable_keys_are_skipped_and_an_empty_set_refused() {
        let ec = r#"{"kty":"EC","crv":"P-256","kid":"ec1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let hmac = r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#;
        let enc = r#"{"kty":"EC","crv":"P-256","use":"enc","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let set =
            KeySet::parse(format!(r#"{{"keys":[{ec},{hmac},{enc},{{"kty":"XYZ"}}]}}"#).as_bytes())
                .unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.candidates(Some("ec1"), Algorithm::ES256).len(), 1);
        assert!(set.candidates(Some("ec1"), Algorithm::RS256).is_empty());
        assert!(set.candidates(Some("other"), Algorithm::ES256).is_empty());
        assert_eq!(set.candidates(None, Algorithm::ES256).len(), 1);
        for bad in [
            "",
            "[]",
            r#"{"keys":{}}"#,
            &format!(r#"{{"keys":[{hmac}]}}"#),
            r#"{"keys":[]}"#,
        ] {
            assert!(KeySet::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
