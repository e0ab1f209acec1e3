//! The client side of the mechanisms, for connections the broker makes itself (follower
//! fetches on a SASL inter-broker listener) and for the `weir` commands.

use super::oauthbearer;
use super::plain;
use super::scram;
use super::Mechanism;

/// Who a client authenticates as, and how. For OAUTHBEARER, `password` is the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSasl {
    pub mechanism: Mechanism,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for ClientSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSasl")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One exchange in progress.
pub enum ClientExchange {
    Plain(Vec<u8>),
    Bearer(Vec<u8>),
    Scram {
        client: scram::Client,
        sent_final: bool,
    },
}

impl ClientSasl {
    pub fn start(&self) -> ClientExchange {
        match self.mechanism {
            Mechanism::Plain => {
                ClientExchange::Plain(plain::client_token(&self.user, &self.password))
            }
            Mechanism::Scram(m) => ClientExchange::Scram {
                client: scram::Client::new(m, &self.user, &self.password),
                sent_final: false,
            },
            Mechanism::OAuthBearer => {
                ClientExchange::Bearer(oauthbearer::client_message(&self.password))
            }
        }
    }
}

impl ClientExchange {
    /// The first token to send.
    pub fn first(&self) -> Vec<u8> {
        match self {
            ClientExchange::Plain(t) | ClientExchange::Bearer(t) => t.clone(),
            ClientExchange::Scram { client, .. } => client.first(),
        }
    }

    /// The server answered `token`: the next token to send, or `None` when the exchange
    /// is complete.
    pub fn next(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            ClientExchange::Plain(_) => Ok(None),
            // Anything but an empty answer is the server's error challenge.
            ClientExchange::Bearer(_) if token.is_empty() => Ok(None),
            ClientExchange::Bearer(_) => Err(format!(
                "the broker refused the token: {}",
                String::from_utf8_lossy(token)
            )),
            ClientExchange::Scram { client, sent_final } => {
                if *sent_final {
                    client.verify(token)?;
                    Ok(None)
                } else {
                    *sent_final = true;
                    client.respond(token).map(Some)
                }
            }
        }
    }
}
