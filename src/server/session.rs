//! The authentication state of one connection on a SASL listener: which requests may
//! be served before the client has authenticated, the SaslHandshake / SaslAuthenticate
//! exchange (framed, KIP-43, or the legacy unframed tokens after a v0 handshake), and
//! the session's end (`connections.max.reauth.ms`, KIP-368). Pure state: the connection
//! feeds requests in and writes what comes out; no I/O happens here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use crate::cluster::MetadataImage;
use crate::config::sasl::SaslSettings;
use crate::sasl::jwt::JwtValidator;
use crate::sasl::oauthbearer::BearerValidator;
use crate::sasl::{Exchange, Mechanism, ScramCredential, ScramMechanism, Step, Users};

/// What the connection does with a request, given the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Serve it as usual.
    Serve,
    /// A SASL request: hand it to the session.
    Sasl,
    /// Close the connection without answering.
    Close(String),
    /// The session ended without re-authentication: close.
    Expired(String),
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake (first authentication, or a re-authentication).
    Handshake,
    /// The mechanism is chosen; tokens follow.
    Exchange {
        mechanism: Mechanism,
        exchange: Exchange,
        /// After a v0 handshake: tokens come as bare frames, not SaslAuthenticate.
        legacy: bool,
    },
    Authenticated,
}

/// The outcome of a SaslHandshake.
#[derive(Debug, PartialEq, Eq)]
pub struct HandshakeAnswer {
    /// `None`: the mechanism is accepted.
    pub error: Option<ResponseError>,
    pub mechanisms: Vec<&'static str>,
    /// Close after answering (an unsupported mechanism, a handshake out of turn).
    pub close: Option<String>,
}

/// The outcome of one token (SaslAuthenticate or a legacy frame).
#[derive(Debug, PartialEq, Eq)]
pub enum TokenAnswer {
    /// Send this token; more follow.
    Continue(Vec<u8>),
    /// Authenticated: send this last token. `lifetime` is the session's, when it ends.
    Done {
        token: Vec<u8>,
        lifetime: Option<Duration>,
    },
    /// Refused: answer with this error and message (after the failed-authentication
    /// delay), then close.
    Failed {
        error: ResponseError,
        message: String,
        detail: String,
    },
}

/// A session end far enough away to be "never" (what an unrepresentable one becomes).
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One connection's SASL session.
pub struct Session {
    settings: Arc<SaslSettings>,
    /// The listener's OAUTHBEARER validator, when it enables the mechanism.
    bearer: Option<Arc<JwtValidator>>,
    state: State,
    /// The authenticated user, once there is one (it may not change on re-authentication).
    user: Option<String>,
    /// The mechanism of the first authentication (re-authentication must use it too).
    first_mechanism: Option<Mechanism>,
    expires_at: Option<Instant>,
    /// Set while a re-authentication runs (the metric tells them apart).
    reauthenticating: bool,
}

impl Session {
    pub fn new(settings: Arc<SaslSettings>, bearer: Option<Arc<JwtValidator>>) -> Session {
        Session {
            settings,
            bearer,
            state: State::Handshake,
            user: None,
            first_mechanism: None,
            expires_at: None,
            reauthenticating: false,
        }
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }

    /// Whether the next frame is a bare legacy token rather than a request.
    pub fn expects_legacy_token(&self) -> bool {
        matches!(self.state, State::Exchange { legacy: true, .. })
    }

    pub fn is_reauthenticating(&self) -> bool {
        self.reauthenticating
    }

    /// The mechanism of the exchange under way (for metrics and logs).
    pub fn mechanism(&self) -> Option<Mechanism> {
        match &self.state {
            State::Exchange { mechanism, .. } => Some(*mechanism),
            _ => self.first_mechanism,
        }
    }

    /// What to do with a request of `api` arriving at `now`.
    pub fn admit(&self, api: ApiKey, now: Instant) -> Admit {
        let sasl = matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        match self.state {
            State::Authenticated => {
                if self.expires_at.is_some_and(|t| now >= t) && api != ApiKey::SaslHandshake {
                    return Admit::Expired(format!(
                        "the SASL session of {:?} expired (connections.max.reauth.ms) and the client did not authenticate again",
                        self.user.as_deref().unwrap_or_default()
                    ));
                }
                if sasl {
                    Admit::Sasl
                } else {
                    Admit::Serve
                }
            }
            _ if sasl => Admit::Sasl,
            // Clients ask for the versions before they authenticate (KIP-511 and KIP-43).
            State::Handshake if api == ApiKey::ApiVersions && !self.reauthenticating => Admit::Serve,
            _ if self.user.is_some() => Admit::Close(format!(
                "{api:?} request in the middle of a re-authentication"
            )),
            _ => Admit::Close(format!(
                "unexpected {api:?} request before SASL authentication (the client is not configured for SASL?)"
            )),
        }
    }

    /// A SaslHandshake for `mechanism` at request `version`.
    pub fn handshake(&mut self, version: i16, mechanism: &str) -> HandshakeAnswer {
        let enabled: Vec<&'static str> =
            self.settings.mechanisms.iter().map(|m| m.name()).collect();
        let answer = |error: Option<ResponseError>, close: Option<String>| HandshakeAnswer {
            error,
            mechanisms: enabled.clone(),
            close,
        };
        match self.state {
            State::Handshake => {}
            State::Authenticated if version >= 1 => self.reauthenticating = true,
            State::Authenticated => {
                return answer(
                    Some(ResponseError::IllegalSaslState),
                    Some(
                        "SaslHandshake v0 after authentication (re-authentication needs v1)".into(),
                    ),
                )
            }
            State::Exchange { .. } => {
                return answer(
                    Some(ResponseError::IllegalSaslState),
                    Some("a second SaslHandshake before the exchange ended".into()),
                )
            }
        }
        let chosen = Mechanism::parse(mechanism).filter(|m| self.settings.mechanisms.contains(m));
        let Some(chosen) = chosen else {
            return answer(
                Some(ResponseError::UnsupportedSaslMechanism),
                Some(format!(
                    "mechanism {mechanism:?} is not enabled on this listener"
                )),
            );
        };
        if self.first_mechanism.is_some_and(|m| m != chosen) {
            return answer(
                Some(ResponseError::IllegalSaslState),
                Some(format!(
                    "re-authentication changed the mechanism to {}",
                    chosen.name()
                )),
            );
        }
        self.state = State::Exchange {
            mechanism: chosen,
            exchange: Exchange::new(chosen),
            legacy: version == 0,
        };
        answer(None, None)
    }

    /// The client's next token, from SaslAuthenticate or a legacy frame, checked against
    /// the listener's users and the credentials in `image`.
    pub fn token(&mut self, token: &[u8], image: &MetadataImage, now: Instant) -> TokenAnswer {
        let State::Exchange {
            mechanism,
            exchange,
            ..
        } = &mut self.state
        else {
            let message = if self.is_authenticated() {
                "SaslAuthenticate request received after successful authentication"
            } else {
                "Unexpected SaslAuthenticate request before SaslHandshake"
            };
            return TokenAnswer::Failed {
                error: ResponseError::IllegalSaslState,
                message: message.into(),
                detail: message.into(),
            };
        };
        let mechanism = *mechanism;
        let users = SessionUsers {
            plain: &self.settings.plain_users,
            image,
            bearer: self.bearer.as_deref(),
        };
        match exchange.step(token, &users) {
            Step::Continue(t) => TokenAnswer::Continue(t),
            Step::Failed { message, detail } => TokenAnswer::Failed {
                error: ResponseError::SaslAuthenticationFailed,
                message,
                detail,
            },
            Step::Done {
                user,
                token,
                lifetime: credential,
            } => {
                if let Some(previous) = self.user.as_deref().filter(|p| *p != user) {
                    let message = "Cannot change principals during re-authentication".to_string();
                    return TokenAnswer::Failed {
                        error: ResponseError::SaslAuthenticationFailed,
                        detail: format!(
                            "re-authentication as {user:?} on a session of {previous:?}"
                        ),
                        message,
                    };
                }
                self.user = Some(user);
                self.first_mechanism = Some(mechanism);
                self.state = State::Authenticated;
                self.reauthenticating = false;
                // KIP-368: a session ends at the earlier of connections.max.reauth.ms and
                // its credential's expiry (a bearer token's exp), whichever exist: as in
                // Kafka since 3.3, a token's expiry holds even with re-authentication off.
                // At least a millisecond, since 0 tells the client "never".
                let lifetime = match (self.settings.max_reauth, credential) {
                    (Some(max), Some(c)) => Some(c.min(max)),
                    (max, c) => max.or(c),
                }
                .map(|l| l.max(Duration::from_millis(1)));
                self.expires_at = lifetime.map(|l| now.checked_add(l).unwrap_or(now + FAR));
                TokenAnswer::Done { token, lifetime }
            }
        }
    }
}

/// Who may log in on this connection: the listener's PLAIN users, the metadata's SCRAM
/// credentials.
struct SessionUsers<'a> {
    plain: &'a std::collections::BTreeMap<String, String>,
    image: &'a MetadataImage,
    bearer: Option<&'a JwtValidator>,
}

impl Users for SessionUsers<'_> {
    fn plain_password(&self, user: &str) -> Option<String> {
        self.plain.get(user).cloned()
    }

    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.image
            .scram_credentials
            .get(user)?
            .get(&mechanism)
            .cloned()
    }

    fn bearer_validator(&self) -> Option<&dyn BearerValidator> {
        self.bearer.map(|b| b as &dyn BearerValidator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::plain::client_token;

    fn session(max_reauth: Option<Duration>) -> Session {
        Session::new(
            Arc::new(SaslSettings {
                listener: "SASL".into(),
                mechanisms: vec![Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha256)],
                plain_users: [
                    ("alice".to_string(), "pw".to_string()),
                    ("bob".to_string(), "pw".to_string()),
                ]
                .into(),
                own_credentials: Default::default(),
                max_reauth,
                oauth: None,
            }),
            None,
        )
    }

    /// A session on a listener that takes unsecured OAUTHBEARER tokens.
    fn bearer_session(max_reauth: Option<Duration>) -> Session {
        use crate::sasl::jwt::{Keys, TokenRules};
        let validator = JwtValidator {
            rules: TokenRules::default(),
            keys: Keys::Unsecured,
        };
        Session::new(
            Arc::new(SaslSettings {
                listener: "SASL".into(),
                mechanisms: vec![Mechanism::OAuthBearer],
                plain_users: Default::default(),
                own_credentials: Default::default(),
                max_reauth,
                oauth: None,
            }),
            Some(Arc::new(validator)),
        )
    }

    fn unsecured_token(sub: &str, expires_in: u64) -> Vec<u8> {
        use base64::Engine;
        let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + expires_in;
        let jwt = format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#.into()),
            b64(format!(r#"{{"sub":"{sub}","exp":{exp}}}"#))
        );
        crate::sasl::oauthbearer::client_message(&jwt)
    }

    #[test]
    fn a_bearer_session_ends_no_later_than_its_token() {
        let image = MetadataImage::default();
        let now = Instant::now();
        for (max_reauth, expected) in [
            (Some(Duration::from_secs(3600)), Some(60)),
            (Some(Duration::from_secs(10)), Some(10)),
            (None, Some(60)),
        ] {
            let mut s = bearer_session(max_reauth);
            assert_eq!(s.handshake(1, "OAUTHBEARER").error, None);
            match s.token(&unsecured_token("carol", 60), &image, now) {
                TokenAnswer::Done { lifetime, .. } => {
                    let secs = lifetime.map(|l| l.as_secs_f64().round() as u64);
                    assert!(
                        secs == expected || secs == expected.map(|e| e - 1),
                        "{secs:?} for {max_reauth:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(s.user(), Some("carol"));
        }
        // An expired token gets the error challenge, then fails once acknowledged.
        let mut s = bearer_session(None);
        s.handshake(1, "OAUTHBEARER");
        let stale = {
            use base64::Engine;
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            crate::sasl::oauthbearer::client_message(&format!(
                "{}.{}.",
                b64(r#"{"alg":"none"}"#),
                b64(r#"{"sub":"carol","exp":1000}"#)
            ))
        };
        assert!(matches!(
            s.token(&stale, &image, now),
            TokenAnswer::Continue(_)
        ));
        match s.token(&[1], &image, now) {
            TokenAnswer::Failed { error, message, .. } => {
                assert_eq!(error, ResponseError::SaslAuthenticationFailed);
                assert!(message.contains("expired"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_api_versions_and_sasl_come_before_authentication() {
        let now = Instant::now();
        let mut s = session(None);
        assert_eq!(s.admit(ApiKey::ApiVersions, now), Admit::Serve);
        assert!(matches!(s.admit(ApiKey::Metadata, now), Admit::Close(_)));
        assert_eq!(s.admit(ApiKey::SaslHandshake, now), Admit::Sasl);
        let img = MetadataImage::default();
        assert!(matches!(
            s.token(b"x", &img, now),
            TokenAnswer::Failed {
                error: ResponseError::IllegalSaslState,
                ..
            }
        ));
        assert_eq!(s.handshake(1, "PLAIN").error, None);
        assert!(!s.expects_legacy_token());
        assert_eq!(
            s.handshake(1, "PLAIN").error,
            Some(ResponseError::IllegalSaslState)
        );
        let mut s = session(None);
        s.handshake(1, "PLAIN");
        assert!(matches!(
            s.token(&client_token("alice", "pw"), &img, now),
            TokenAnswer::Done { lifetime: None, .. }
        ));
        assert_eq!(s.user(), Some("alice"));
        assert_eq!(s.admit(ApiKey::Metadata, now), Admit::Serve);
        assert!(matches!(
            s.token(b"x", &img, now),
            TokenAnswer::Failed {
                error: ResponseError::IllegalSaslState,
                ..
            }
        ));
    }

    #[test]
    fn unknown_mechanisms_and_legacy_handshakes() {
        let mut s = session(None);
        let a = s.handshake(1, "GSSAPI");
        assert_eq!(a.error, Some(ResponseError::UnsupportedSaslMechanism));
        assert_eq!(a.mechanisms, vec!["PLAIN", "SCRAM-SHA-256"]);
        assert!(a.close.is_some());
        let mut s = session(None);
        assert_eq!(s.handshake(0, "PLAIN").error, None);
        assert!(s.expects_legacy_token());
        assert!(matches!(
            s.token(
                &client_token("alice", "no"),
                &MetadataImage::default(),
                Instant::now()
            ),
            TokenAnswer::Failed {
                error: ResponseError::SaslAuthenticationFailed,
                ..
            }
        ));
    }

    #[test]
    fn sessions_end_unless_renewed_by_the_same_user_and_mechanism() {
        let img = MetadataImage::default();
        let t0 = Instant::now();
        let mut s = session(Some(Duration::from_secs(10)));
        s.handshake(1, "PLAIN");
        assert_eq!(
            s.token(&client_token("alice", "pw"), &img, t0),
            TokenAnswer::Done {
                token: vec![],
                lifetime: Some(Duration::from_secs(10))
            }
        );
        assert_eq!(
            s.admit(ApiKey::Fetch, t0 + Duration::from_secs(9)),
            Admit::Serve
        );
        assert!(matches!(
            s.admit(ApiKey::Fetch, t0 + Duration::from_secs(10)),
            Admit::Expired(_)
        ));
        // Re-authentication renews the session.
        let t1 = t0 + Duration::from_secs(8);
        assert_eq!(s.handshake(1, "PLAIN").error, None);
        assert!(s.is_reauthenticating());
        assert!(matches!(s.admit(ApiKey::Fetch, t1), Admit::Close(_)));
        assert!(matches!(
            s.token(&client_token("alice", "pw"), &img, t1),
            TokenAnswer::Done { .. }
        ));
        assert_eq!(
            s.admit(ApiKey::Fetch, t0 + Duration::from_secs(17)),
            Admit::Serve
        );
        // Not as another user, nor with another mechanism.
        s.handshake(1, "PLAIN");
        assert!(matches!(
            s.token(&client_token("bob", "pw"), &img, t1),
            TokenAnswer::Failed { .. }
        ));
        let mut s = session(None);
        s.handshake(1, "PLAIN");
        s.token(&client_token("alice", "pw"), &img, t0);
        assert_eq!(
            s.handshake(1, "SCRAM-SHA-256").error,
            Some(ResponseError::IllegalSaslState)
        );
        assert_eq!(session(None).handshake(1, "SCRAM-SHA-256").error, None);
    }
}
