//! Bearer-token validation for OAUTHBEARER, with the rules of Kafka's
//! `OAuthBearerValidatorCallbackHandler`: a signed JWT whose signature verifies against a
//! key of the listener's JWKS (`kid`, else any key of the token's algorithm), which has
//! `exp` and `iat`, is within `exp`/`nbf` give or take the clock skew, names an expected
//! audience and issuer when those are configured, and carries the principal in `sub` (or
//! the configured claim). `alg: none` and symmetric algorithms are refused. Kafka's
//! unsecured tokens (`alg: none`, no signature, as librdkafka's
//! `enable.sasl.oauthbearer.unsecure.jwt` makes them) are accepted only by a listener
//! that names the unsecured validator explicitly. The signature checks come from the
//! `jsonwebtoken` crate; the time checks take `now` so they are tested without a clock.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::{Map, Value};

use super::jwks::KeyStore;
use super::oauthbearer::{BearerValidator, InvalidToken, ValidToken};

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// `sasl.oauthbearer.expected.audience`: the token's `aud` must name one of these.
    pub audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`.
    pub issuer: Option<String>,
    /// `sasl.oauthbearer.clock.skew.seconds`.
    pub clock_skew: Duration,
    /// `sasl.oauthbearer.sub.claim.name`: the claim that names the principal.
    pub principal_claim: String,
    /// `sasl.oauthbearer.scope.claim.name`.
    pub scope_claim: String,
    /// Scopes a token must carry (the unsecured validator's `unsecuredValidatorRequiredScope`).
    pub required_scope: Vec<String>,
}

impl Default for TokenRules {
    fn default() -> TokenRules {
        TokenRules {
            audience: Vec::new(),
            issuer: None,
            clock_skew: Duration::from_secs(30),
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
        }
    }
}

/// Where signatures are checked.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Signed tokens, against this key set.
    Jwks(Arc<KeyStore>),
    /// Unsigned tokens (`alg: none`) only: for tests and development.
    Unsecured,
}

/// The validator of one listener.
#[derive(Debug, Clone)]
pub struct JwtValidator {
    pub rules: TokenRules,
    pub keys: Keys,
}

impl BearerValidator for JwtValidator {
    fn validate(&self, token: &str) -> Result<ValidToken, InvalidToken> {
        self.validate_at(token, SystemTime::now())
    }
}

/// The longest lifetime a token is credited with (ten years).
const MAX_LIFETIME_SECS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;

/// Keys tried for a token without a `kid`.
const MAX_KEYS_TRIED: usize = 8;

/// A token's own text, cut short for messages and logs.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn invalid(reason: impl Into<String>) -> InvalidToken {
    let reason = reason.into();
    InvalidToken::new(reason.clone(), reason)
}

impl JwtValidator {
    pub fn validate_at(&self, token: &str, now: SystemTime) -> Result<ValidToken, InvalidToken> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err(invalid(format!(
                "not a JWT (expected 3 parts separated by '.', got {})",
                parts.len()
            )));
        };
        let header = decode_json(header).map_err(|e| invalid(format!("malformed header: {e}")))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let claims = match &self.keys {
            Keys::Unsecured => {
                if alg != "none" || !signature.is_empty() {
                    return Err(InvalidToken::new(
                        "this listener accepts only unsecured tokens (alg none, no signature)",
                        format!("a token with alg {:?} on an unsecured listener", clip(alg)),
                    ));
                }
                decode_json(payload).map_err(|e| invalid(format!("malformed claims: {e}")))?
            }
            Keys::Jwks(store) => {
                let kid = header.get("kid").and_then(Value::as_str);
                self.verify_signed(store, token, alg, kid)?
            }
        };
        self.check_claims(&claims, now)
    }

    /// Verifies the signature (and audience and issuer) of a signed token.
    fn verify_signed(
        &self,
        store: &KeyStore,
        token: &str,
        alg: &str,
        kid: Option<&str>,
    ) -> Result<Map<String, Value>, InvalidToken> {
        if alg.eq_ignore_ascii_case("none") {
            return Err(invalid("unsecured tokens (alg none) are not accepted"));
        }
        let algorithm = Algorithm::from_str(alg).map_err(|_| {
            InvalidToken::new(
                "unsupported algorithm",
                format!("unsupported algorithm {:?}", clip(alg)),
            )
        })?;
        if algorithm.family() == AlgorithmFamily::Hmac {
            return Err(invalid(format!(
                "symmetric algorithm {alg:?} is not accepted (sign with a key of the JWKS)"
            )));
        }
        let Some(keys) = store.current() else {
            return Err(InvalidToken::new(
                "no verification keys are loaded yet",
                format!("the JWKS of {} is not loaded", store.source()),
            ));
        };
        let candidates = keys.candidates(kid, algorithm);
        if candidates.is_empty() {
            store.request_refresh();
            return Err(InvalidToken::new(
                "no key of the JWKS fits the token (kid, alg)",
                match kid {
                    Some(kid) => format!("no key with id {:?} for {alg:?} in the JWKS", clip(kid)),
                    None => format!("no key for {alg:?} in the JWKS"),
                },
            ));
        }
        let mut validation = Validation::new(algorithm);
        // Expiry and not-before are checked below, against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.required_spec_claims = HashSet::new();
        // Without an expected audience a token that names one is refused, as jose4j
        // (Kafka's validator) does: it was issued for someone else.
        if !self.rules.audience.is_empty() {
            validation.set_audience(&self.rules.audience);
            validation.required_spec_claims.insert("aud".into());
        }
        let mut last = None;
        // Without a kid each key of the algorithm is tried; a few are enough.
        for key in candidates.into_iter().take(MAX_KEYS_TRIED) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => last = Some(e),
                Err(e) => return Err(self.explain(e.kind())),
            }
        }
        Err(self.explain(
            last.as_ref()
                .map_or(&ErrorKind::InvalidSignature, |e| e.kind()),
        ))
    }

    fn explain(&self, kind: &ErrorKind) -> InvalidToken {
        match kind {
            ErrorKind::InvalidSignature => invalid("the signature does not verify"),
            // The client learns what is wrong, the log also what was expected.
            ErrorKind::InvalidAudience => InvalidToken::new(
                "the audience (aud) is not accepted",
                format!("the audience (aud) is not one of {:?}", self.rules.audience),
            ),
            ErrorKind::InvalidIssuer => InvalidToken::new(
                "the issuer (iss) is not accepted",
                format!(
                    "the issuer (iss) is not {:?}",
                    self.rules.issuer.as_deref().unwrap_or_default()
                ),
            ),
            ErrorKind::MissingRequiredClaim(c) => invalid(format!("the token has no {c} claim")),
            ErrorKind::InvalidClaimFormat(c) => invalid(format!("the {c} claim is malformed")),
            ErrorKind::InvalidAlgorithm => invalid("the key does not fit the token's algorithm"),
            other => InvalidToken::new("malformed token", format!("malformed token: {other:?}")),
        }
    }

    /// Time, principal and scope: the same for signed and unsecured tokens.
    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<ValidToken, InvalidToken> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let skew = self.rules.clock_skew.as_secs_f64();
        let time = |name: &str| -> Result<Option<f64>, InvalidToken> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|t| t.is_finite())
                    .map(Some)
                    .ok_or_else(|| invalid(format!("the {name} claim is not a number"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| invalid("the token has no exp claim"))?;
        let iat = time("iat")?;
        let unsecured = matches!(self.keys, Keys::Unsecured);
        if iat.is_none() && !unsecured {
            return Err(invalid("the token has no iat claim"));
        }
        if let (Some(iat), true) = (iat, unsecured) {
            // Kafka's unsecured validator: not issued in the future, not expired at issue.
            if iat > now + skew {
                return Err(invalid("the token is issued in the future (iat)"));
            }
            if exp <= iat {
                return Err(invalid(
                    "the token expires before it is issued (exp <= iat)",
                ));
            }
        }
        if let Some(iss) = &self.rules.issuer {
            // One issuer, as a string (a list is not an issuer).
            if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
                return Err(InvalidToken::new(
                    "the issuer (iss) is not accepted",
                    format!("the issuer (iss) is not {iss:?}"),
                ));
            }
        }
        if exp + skew <= now {
            return Err(InvalidToken::new(
                "the token has expired",
                format!("the token expired at {exp} (now {now:.0}, clock skew {skew}s)"),
            ));
        }
        if let Some(nbf) = time("nbf")? {
            if nbf > now + skew {
                return Err(invalid("the token is not valid yet (nbf)"));
            }
        }
        let claim = &self.rules.principal_claim;
        let principal = claims
            .get(claim)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| invalid(format!("the token has no {claim} claim (the principal)")))?;
        if !self.rules.required_scope.is_empty() {
            // As Kafka reads it: a string is one scope, an array several.
            let scopes: Vec<&str> = match claims.get(&self.rules.scope_claim) {
                Some(Value::String(s)) => vec![s.trim()],
                Some(Value::Array(a)) => {
                    a.iter().filter_map(Value::as_str).map(str::trim).collect()
                }
                _ => Vec::new(),
            };
            if let Some(missing) = self
                .rules
                .required_scope
                .iter()
                .find(|s| !scopes.contains(&s.as_str()))
            {
                return Err(invalid(format!("the token's scope lacks {missing:?}")));
            }
        }
        Ok(ValidToken {
            principal: principal.to_string(),
            // Clamped: a far-future exp must not overflow a Duration.
            lifetime: Duration::from_secs_f64((exp - now).clamp(0.0, MAX_LIFETIME_SECS)),
        })
    }
}

fn decode_json(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| "not base64url".to_string())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a JSON object".into()),
        Err(_) => Err("not JSON".into()),
    }
}

#[cfg(test)]
mod tests;
