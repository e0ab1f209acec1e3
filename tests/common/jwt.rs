//! An identity provider for the OAUTHBEARER tests: signing keys with their JSON Web Key
//! Set, tokens signed with them (or unsigned, as librdkafka's unsecured tokens are), and
//! a JWKS endpoint served over HTTPS by this process. Test files include it with
//! `#[path = "common/jwt.rs"] mod jwt;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One signing key (ES256) and its public JWK.
pub struct Signer {
    key: EncodingKey,
    pub jwk: Jwk,
}

impl Signer {
    pub fn new(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.into());
        Signer { key, jwk }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        encode(&header, claims, &self.key).unwrap()
    }

    /// A token for `sub` valid for `secs` seconds, with audience "weir" and issuer "test-idp".
    pub fn token(&self, sub: &str, secs: i64) -> String {
        self.sign(&claims(sub, secs))
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn claims(sub: &str, secs: i64) -> Value {
    let now = now();
    json!({"sub": sub, "iat": now, "exp": now + secs, "aud": "weir", "iss": "test-idp"})
}

/// An unsigned token (`alg: none`), as `enable.sasl.oauthbearer.unsecure.jwt` makes them.
pub fn unsecured(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub fn jwks(signers: &[&Signer]) -> String {
    json!({ "keys": signers.iter().map(|s| &s.jwk).collect::<Vec<_>>() }).to_string()
}

/// A JWKS endpoint over HTTPS (certificate for 127.0.0.1 from its own CA, whose PEM is
/// `ca_pem`); `set` changes the document it serves; `requests` counts the fetches.
pub struct JwksServer {
    pub addr: SocketAddr,
    pub ca_pem: String,
    doc: Arc<Mutex<String>>,
    pub requests: Arc<Mutex<usize>>,
}

impl JwksServer {
    pub async fn start(doc: String) -> JwksServer {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test idp CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc = Arc::new(Mutex::new(doc));
        let requests = Arc::new(Mutex::new(0));
        let (d, r) = (doc.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, d, r) = (acceptor.clone(), d.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    *r.lock().unwrap() += 1;
                    let body = d.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        JwksServer {
            addr,
            ca_pem: ca_cert.pem(),
            doc,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}/jwks.json", self.addr)
    }

    pub fn set(&self, doc: String) {
        *self.doc.lock().unwrap() = doc;
    }

    pub fn fetches(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}
