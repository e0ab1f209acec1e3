//! SASL authentication as Kafka speaks it: the mechanisms (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512, OAUTHBEARER with its JWT validation and verification keys), each a pure exchange from the client's token to the server's answer
//! with no I/O, the JAAS settings the users and credentials come from, and the client
//! side that the broker's own connections and the `weir` commands authenticate with.
//! The per-connection state (which mechanism, when the session ends) lives in
//! `crate::server::session`; the SCRAM credentials live in the replicated metadata.

pub mod client;
pub mod jaas;
pub mod jwks;
pub mod jwt;
pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::collections::BTreeMap;

pub use client::ClientSasl;
pub use scram::{ScramCredential, ScramMechanism};

/// A SASL mechanism Weir serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::Scram(ScramMechanism::Sha512),
        Mechanism::OAuthBearer,
    ];

    /// Kafka's mechanism name (case-sensitive, as in Kafka).
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Where an exchange finds who may log in: PLAIN users from the listener's JAAS
/// settings, SCRAM credentials from the metadata, the listener's bearer-token validator.
pub trait Users {
    fn plain_password(&self, user: &str) -> Option<String>;
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
    fn bearer_validator(&self) -> Option<&dyn oauthbearer::BearerValidator> {
        None
    }
}

/// A user table for tests and for PLAIN users given in settings.
impl Users for BTreeMap<String, String> {
    fn plain_password(&self, user: &str) -> Option<String> {
        self.get(user).cloned()
    }

    fn scram_credential(&self, _: &str, _: ScramMechanism) -> Option<ScramCredential> {
        None
    }
}

/// What a step of an exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the client's next one.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `token` (possibly empty) as the last answer.
    /// `lifetime`: how long the credential stays valid (a bearer token's expiry), when
    /// it is limited.
    Done {
        user: String,
        token: Vec<u8>,
        lifetime: Option<std::time::Duration>,
    },
    /// Refused. `message` goes to the client (Kafka's wording); `detail` to the log only,
    /// since telling a client which part was wrong helps an attacker.
    Failed { message: String, detail: String },
}

impl Step {
    fn failed(message: impl Into<String>, detail: impl Into<String>) -> Step {
        Step::Failed {
            message: message.into(),
            detail: detail.into(),
        }
    }
}

/// The server side of one authentication exchange.
#[derive(Debug)]
pub enum Exchange {
    Plain,
    Scram(scram::Server),
    OAuthBearer(oauthbearer::Server),
    /// Finished (done or failed): any further token is a protocol error.
    Over,
}

impl Exchange {
    pub fn new(mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::Scram(m) => Exchange::Scram(scram::Server::new(m)),
            Mechanism::OAuthBearer => Exchange::OAuthBearer(oauthbearer::Server::Start),
        }
    }

    /// Feed the client's next token.
    pub fn step(&mut self, token: &[u8], users: &dyn Users) -> Step {
        let step = match self {
            Exchange::Plain => plain::authenticate(token, users),
            Exchange::Scram(s) => s.step(token, users),
            Exchange::OAuthBearer(s) => s.step(token, users),
            Exchange::Over => Step::failed(
                "Unexpected SASL token after the exchange ended",
                "token after the end of the exchange",
            ),
        };
        if !matches!(step, Step::Continue(_)) {
            *self = Exchange::Over;
        }
        step
    }
}

/// The OAUTHBEARER validator of every listener that enables the mechanism, and the key
/// stores to keep fresh (one per distinct source). A file source is read here, so a
/// missing or broken key set stops the broker at start; an endpoint is fetched by its
/// store's task.
#[allow(clippy::type_complexity)]
pub fn bearer_validators(
    sasl: &crate::config::sasl::Sasl,
) -> anyhow::Result<(
    BTreeMap<String, std::sync::Arc<jwt::JwtValidator>>,
    Vec<std::sync::Arc<jwks::KeyStore>>,
)> {
    use std::sync::Arc;

    use crate::config::oauth::OAuthKeys;
    let mut validators = BTreeMap::new();
    let mut stores: Vec<Arc<jwks::KeyStore>> = Vec::new();
    for (listener, settings) in &sasl.listeners {
        let Some(oauth) = &settings.oauth else {
            continue;
        };
        let keys = match &oauth.keys {
            OAuthKeys::Unsecured => {
                tracing::warn!(%listener, "OAUTHBEARER accepts unsecured (unsigned) tokens on this listener: for tests only");
                jwt::Keys::Unsecured
            }
            OAuthKeys::Jwks { source, refresh } => {
                let store = match stores.iter().find(|s| s.source() == source) {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(jwks::KeyStore::new(source.clone(), refresh.clone()));
                        s.load_file_now().map_err(|e| {
                            anyhow::anyhow!(
                                "sasl.oauthbearer.jwks.endpoint.url of listener {listener}: {e}"
                            )
                        })?;
                        stores.push(s.clone());
                        s
                    }
                };
                jwt::Keys::Jwks(store)
            }
        };
        let validator = jwt::JwtValidator {
            rules: oauth.rules.clone(),
            keys,
        };
        validators.insert(listener.clone(), Arc::new(validator));
    }
    Ok((validators, stores))
}
