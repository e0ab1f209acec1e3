//! SASL authentication as Kafka speaks it: the mechanisms (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512), each a pure exchange from the client's token to the server's answer
//! with no I/O, the JAAS settings the users and credentials come from, and the client
//! side that the broker's own connections and the `weir` commands authenticate with.
//! The per-connection state (which mechanism, when the session ends) lives in
//! `crate::server::session`; the SCRAM credentials live in the replicated metadata.

pub mod client;
pub mod jaas;
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
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::Scram(ScramMechanism::Sha512),
    ];

    /// Kafka's mechanism name (case-sensitive, as in Kafka).
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

/// Where an exchange finds who may log in: PLAIN users from the listener's JAAS
/// settings, SCRAM credentials from the metadata.
pub trait Users {
    fn plain_password(&self, user: &str) -> Option<String>;
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
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
    Done { user: String, token: Vec<u8> },
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
    /// Finished (done or failed): any further token is a protocol error.
    Over,
}

impl Exchange {
    pub fn new(mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::Scram(m) => Exchange::Scram(scram::Server::new(m)),
        }
    }

    /// Feed the client's next token.
    pub fn step(&mut self, token: &[u8], users: &dyn Users) -> Step {
        let step = match self {
            Exchange::Plain => plain::authenticate(token, users),
            Exchange::Scram(s) => s.step(token, users),
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
