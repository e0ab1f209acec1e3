//! SASL/OAUTHBEARER (RFC 7628, Kafka's KIP-255): the client's one message carries a
//! bearer token (a JWT) and optional SASL extensions; the token is checked by a
//! [`BearerValidator`] and its principal becomes the session's user. A refused token is
//! answered as Kafka answers it: a JSON error challenge (`{"status":"invalid_token"}`),
//! which the client acknowledges with a single `%x01` before the exchange fails with
//! the reason. Pure: no I/O, no clock of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Step, Users};

/// The separator of the message's key/value pairs (RFC 7628's `kvsep`).
const KVSEP: u8 = 0x01;

/// What a client sends: `n,[a=<authzid>],` `%x01` `auth=Bearer <token>` `%x01`
/// (`<key>=<value>` `%x01`)* `%x01`.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFirst<'a> {
    pub authzid: &'a str,
    pub token: &'a str,
    /// Every pair but `auth` (Kafka's SASL extensions).
    pub extensions: BTreeMap<&'a str, &'a str>,
}

/// Parses the client's message; the error says which part is wrong.
pub fn parse(message: &[u8]) -> Result<ClientFirst<'_>, String> {
    let text = std::str::from_utf8(message).map_err(|_| "not UTF-8".to_string())?;
    let (gs2, rest) = text
        .split_once(',')
        .and_then(|(flag, rest)| Some((flag, rest.split_once(',')?)))
        .map(|(flag, (authz, rest))| ((flag, authz), rest))
        .ok_or("no GS2 header (n,,)")?;
    if gs2.0 != "n" {
        return Err(format!(
            "channel binding flag {:?} (only \"n\" is supported)",
            gs2.0
        ));
    }
    let authzid = match gs2.1 {
        "" => "",
        a => a
            .strip_prefix("a=")
            .ok_or_else(|| format!("GS2 header part {a:?} is not a=<authzid>"))?,
    };
    let pairs = rest
        .strip_prefix(KVSEP as char)
        .and_then(|r| r.strip_suffix("\u{1}\u{1}"))
        .ok_or("the key/value pairs are not framed by %x01 ... %x01%x01")?;
    let mut token = None;
    let mut extensions = BTreeMap::new();
    for pair in pairs.split(KVSEP as char) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| "a key/value pair has no '='".to_string())?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("invalid key {key:?}"));
        }
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b))
        {
            return Err(format!("empty value or invalid characters in {key:?}"));
        }
        if key == "auth" {
            let (scheme, t) = value
                .split_once(' ')
                .ok_or("auth is not \"Bearer <token>\"")?;
            // Kafka's AUTH_PATTERN: the token is base64url text and dots, nothing else.
            let valid_token = !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !scheme.eq_ignore_ascii_case("bearer") || !valid_token {
                return Err("auth is not \"Bearer <token>\"".into());
            }
            if token.replace(t).is_some() {
                return Err("auth given twice".into());
            }
        } else if extensions.insert(key, value).is_some() {
            return Err(format!("extension {key:?} given twice"));
        }
    }
    Ok(ClientFirst {
        authzid,
        token: token.ok_or("no auth=Bearer <token> pair")?,
        extensions,
    })
}

/// The client's message for `token`, for the broker's own connections and `weir`.
pub fn client_message(token: &str) -> Vec<u8> {
    format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
}

/// A token the validator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: String,
    /// How long until the token expires (`exp`): the session may not outlive it.
    pub lifetime: Duration,
}

/// Why a token was refused: `reason` goes to the client (what was wrong, never key
/// material), `detail` to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidToken {
    pub reason: String,
    pub detail: String,
}

impl InvalidToken {
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> InvalidToken {
        InvalidToken {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

/// Checks bearer tokens: signature against the listener's keys (or, where explicitly
/// enabled, Kafka's unsecured tokens), expiry, audience, issuer, principal claim.
pub trait BearerValidator {
    fn validate(&self, token: &str) -> Result<ValidToken, InvalidToken>;
}

/// The server side of one OAUTHBEARER exchange.
#[derive(Debug)]
pub enum Server {
    Start,
    /// The error challenge went out; the client's `%x01` ends the exchange with this.
    SentError {
        message: String,
        detail: String,
    },
    Done,
}

impl Server {
    pub fn step(&mut self, message: &[u8], users: &dyn Users) -> Step {
        match std::mem::replace(self, Server::Done) {
            Server::Start => self.first(message, users),
            Server::SentError { message: m, detail } => {
                let detail = if message == [KVSEP] {
                    detail
                } else {
                    format!("{detail}; the client did not acknowledge the error challenge")
                };
                Step::failed(m, detail)
            }
            Server::Done => Step::failed("Unexpected OAUTHBEARER message", "message after the end"),
        }
    }

    fn first(&mut self, message: &[u8], users: &dyn Users) -> Step {
        let first = match parse(message) {
            Ok(f) => f,
            Err(e) => {
                return Step::failed(
                    "Invalid OAUTHBEARER client first message",
                    format!("invalid client first message: {e}"),
                )
            }
        };
        let Some(validator) = users.bearer_validator() else {
            return Step::failed(
                "Authentication failed: OAUTHBEARER is not configured on this listener",
                "no validator",
            );
        };
        match validator.validate(first.token) {
            Ok(valid) => {
                if !first.authzid.is_empty() && first.authzid != valid.principal {
                    return Step::failed(
                        format!("Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})", first.authzid, valid.principal),
                        "authorization id differs from the token's principal",
                    );
                }
                Step::Done {
                    user: valid.principal,
                    token: Vec::new(),
                    lifetime: Some(valid.lifetime),
                }
            }
            Err(invalid) => {
                // Kafka's error challenge: the client answers %x01 and only then fails.
                *self = Server::SentError {
                    message: format!("Authentication failed: invalid_token: {}", invalid.reason),
                    detail: invalid.detail,
                };
                Step::Continue(br#"{"status":"invalid_token"}"#.to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_as_kafka_clients_send_them() {
        let m = parse(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").unwrap();
        assert_eq!((m.authzid, m.token), ("", "abc.def.ghi"));
        assert!(m.extensions.is_empty());
        let m = parse(b"n,a=alice,\x01auth=bearer t\x01traceId=42\x01logicalCluster=lc-1\x01\x01")
            .unwrap();
        assert_eq!((m.authzid, m.token), ("alice", "t"));
        assert_eq!(m.extensions.get("traceId"), Some(&"42"));
        assert_eq!(parse(&client_message("x.y.z")).unwrap().token, "x.y.z");
        for bad in [
            &b""[..],
            b"n,,",
            b"y,,\x01auth=Bearer t\x01\x01",
            b"n,b=x,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer t\x01",
            b"n,,\x01auth=Basic t\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01\x01",
            b"n,,\x01x=1\x01\x01",
            b"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
            b"n,,\x01auth=Bearer t\x01k1=v\x01\x01",
            b"n,,\x01auth=Bearer t\x01k=\x7f\x01\x01",
            b"n,,\x01auth=Bearer t\x01noequals\x01\x01",
            b"n,,\x01auth=Bearer \xff\x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01auth=Bearer t==\x01\x01",
            b"n,,\x01auth=Bearer t\x01k=\x01\x01",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    struct Fixed(Result<ValidToken, InvalidToken>);

    impl BearerValidator for Fixed {
        fn validate(&self, _: &str) -> Result<ValidToken, InvalidToken> {
            self.0.clone()
        }
    }

    impl Users for Fixed {
        fn plain_password(&self, _: &str) -> Option<String> {
            None
        }
        fn scram_credential(
            &self,
            _: &str,
            _: super::super::ScramMechanism,
        ) -> Option<super::super::ScramCredential> {
            None
        }
        fn bearer_validator(&self) -> Option<&dyn BearerValidator> {
            Some(self)
        }
    }

    #[test]
    fn a_valid_token_authenticates_its_principal_for_its_lifetime() {
        let ok = Fixed(Ok(ValidToken {
            principal: "alice".into(),
            lifetime: Duration::from_secs(60),
        }));
        let step = Server::Start.step(&client_message("t"), &ok);
        assert_eq!(
            step,
            Step::Done {
                user: "alice".into(),
                token: vec![],
                lifetime: Some(Duration::from_secs(60))
            }
        );
        let step = Server::Start.step(b"n,a=bob,\x01auth=Bearer t\x01\x01", &ok);
        assert!(matches!(step, Step::Failed { message, .. } if message.contains("(bob)")));
    }

    #[test]
    fn a_refused_token_gets_the_error_challenge_then_fails_with_the_reason() {
        let no = Fixed(Err(InvalidToken::new(
            "the token has expired",
            "exp 1 < now 2",
        )));
        let mut s = Server::Start;
        assert_eq!(
            s.step(&client_message("t"), &no),
            Step::Continue(br#"{"status":"invalid_token"}"#.to_vec())
        );
        match s.step(&[KVSEP], &no) {
            Step::Failed { message, detail } => {
                assert_eq!(
                    message,
                    "Authentication failed: invalid_token: the token has expired"
                );
                assert_eq!(detail, "exp 1 < now 2");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.step(&[KVSEP], &no), Step::Failed { .. }));
        let step = Server::Start.step(b"garbage", &no);
        assert!(
            matches!(step, Step::Failed { message, .. } if message == "Invalid OAUTHBEARER client first message")
        );
    }
}
