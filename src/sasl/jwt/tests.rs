use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::sasl::jwks::{JwksSource, KeySet, Refresh};

const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

struct Signer {
    key: EncodingKey,
    jwk: Jwk,
}

fn signer(kid: &str) -> Signer {
    let pair = rcgen::KeyPair::generate().unwrap();
    let key = EncodingKey::from_ec_der(&pair.serialize_der());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    Signer { key, jwk }
}

impl Signer {
    fn sign(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        encode(&header, &claims, &self.key).unwrap()
    }
}

fn validator(signers: &[&Signer], rules: TokenRules) -> JwtValidator {
    let doc = json!({ "keys": signers.iter().map(|s| &s.jwk).collect::<Vec<_>>() });
    let keys = KeySet::parse(doc.to_string().as_bytes()).unwrap();
    let refresh = Refresh {
        every: Duration::from_secs(3600),
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_secs(10),
    };
    JwtValidator {
        rules,
        keys: Keys::Jwks(Arc::new(KeyStore::with_keys(
            JwksSource::File("jwks.json".into()),
            refresh,
            keys,
        ))),
    }
}

fn claims() -> serde_json::Value {
    json!({"sub": "alice", "iat": NOW - 10, "exp": NOW + 300, "aud": "weir", "iss": "https://idp"})
}

fn reason(r: Result<ValidToken, InvalidToken>) -> String {
    r.unwrap_err().reason
}

fn without_aud() -> serde_json::Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    c
}

#[test]
fn a_signed_token_names_its_principal_and_lifetime() {
    let s = signer("k1");
    let v = validator(&[&s], TokenRules::default());
    let ok = v.validate_at(&s.sign(without_aud()), now()).unwrap();
    assert_eq!(ok.principal, "alice");
    assert_eq!(ok.lifetime, Duration::from_secs(300));
    // A far-future exp is credited ten years, and a padded principal is trimmed.
    let mut c = without_aud();
    c["exp"] = json!(1e300);
    c["sub"] = json!("  alice ");
    let far = v.validate_at(&s.sign(c), now()).unwrap();
    assert_eq!(far.lifetime, Duration::from_secs(10 * 365 * 24 * 3600));
    assert_eq!(far.principal, "alice");
    // Another principal claim.
    let rules = TokenRules {
        principal_claim: "email".into(),
        ..TokenRules::default()
    };
    let v = validator(&[&s], rules);
    let mut c = without_aud();
    c["email"] = json!("alice@example.com");
    assert_eq!(
        v.validate_at(&s.sign(c), now()).unwrap().principal,
        "alice@example.com"
    );
    assert!(reason(v.validate_at(&s.sign(without_aud()), now())).contains("no email claim"));
}

#[test]
fn bad_signatures_unknown_keys_and_unsecured_tokens_are_refused() {
    let s = signer("k1");
    let other = signer("k1");
    let v = validator(&[&s], TokenRules::default());
    assert!(reason(v.validate_at(&other.sign(without_aud()), now())).contains("signature"));
    let stranger = signer("k9");
    let e = v.validate_at(&stranger.sign(claims()), now()).unwrap_err();
    assert!(
        e.reason.contains("no key") && e.detail.contains("\"k9\""),
        "{e:?}"
    );
    // A token issued for some audience, on a listener that expects none: refused, as
    // Kafka's validator does.
    assert!(reason(v.validate_at(&s.sign(claims()), now())).contains("audience"));
    // alg none, as librdkafka's unsecured tokens come.
    let unsecured = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert!(reason(v.validate_at(&unsecured, now())).contains("alg none"));
    // A symmetric token signed with the public key's bytes (the classic confusion attack).
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"whatever").unwrap(),
    )
    .unwrap();
    assert!(reason(v.validate_at(&hs, now())).contains("symmetric"));
    // Tampered claims keep the old signature.
    let token = s.sign(claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    assert!(reason(v.validate_at(&forged, now())).contains("signature"));
    for garbage in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.e30.x",
        "e30.e30.x",
        "bm90IGpzb24.e30.x",
    ] {
        assert!(v.validate_at(garbage, now()).is_err(), "{garbage}");
    }
}

#[test]
fn time_audience_and_issuer_are_checked() {
    let s = signer("k1");
    let rules = TokenRules {
        audience: vec!["weir".into(), "kafka".into()],
        issuer: Some("https://idp".into()),
        ..TokenRules::default()
    };
    let v = validator(&[&s], rules);
    assert!(v.validate_at(&s.sign(claims()), now()).is_ok());
    let with = |k: &str, val: serde_json::Value| {
        let mut c = claims();
        c[k] = val;
        reason(v.validate_at(&s.sign(c), now()))
    };
    let without = |k: &str| {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(k);
        reason(v.validate_at(&s.sign(c), now()))
    };
    assert!(with("aud", json!("other")).contains("audience"));
    assert!(without("aud").contains("no aud"));
    assert!(with("iss", json!("https://evil")).contains("issuer"));
    // A list is not an issuer, even one naming the right one.
    assert!(with("iss", json!(["x", "https://idp"])).contains("issuer"));
    assert!(without("iss").contains("issuer"));
    assert!(without("exp").contains("no exp"));
    assert!(without("iat").contains("no iat"));
    assert!(without("sub").contains("no sub"));
    assert!(with("exp", json!("soon")).contains("exp"));
    assert!(with("sub", json!("")).contains("no sub"));
    // Expiry with the default 30 s of clock skew.
    assert!(with("exp", json!(NOW - 31)).contains("expired"));
    let lenient = {
        let mut c = claims();
        c["exp"] = json!(NOW - 29);
        v.validate_at(&s.sign(c), now()).unwrap()
    };
    assert_eq!(lenient.lifetime, Duration::ZERO);
    assert!(with("nbf", json!(NOW + 60)).contains("not valid yet"));
    let mut c = claims();
    c["nbf"] = json!(NOW + 20);
    assert!(v.validate_at(&s.sign(c), now()).is_ok());
    // An array audience naming one expected value.
    assert!(v
        .validate_at(
            &s.sign({
                let mut c = claims();
                c["aud"] = json!(["x", "kafka"]);
                c
            }),
            now()
        )
        .is_ok());
}

#[test]
fn keys_without_a_kid_are_tried_by_algorithm() {
    let mut s = signer("k1");
    s.jwk.common.key_id = None;
    let v = validator(&[&s], TokenRules::default());
    let token = encode(&Header::new(Algorithm::ES256), &without_aud(), &s.key).unwrap();
    assert!(v.validate_at(&token, now()).is_ok());
}

#[test]
fn unsecured_tokens_only_where_enabled() {
    let v = JwtValidator {
        rules: TokenRules {
            required_scope: vec!["kafka".into()],
            ..TokenRules::default()
        },
        keys: Keys::Unsecured,
    };
    let unsecured = |c: serde_json::Value| {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(c.to_string())
        )
    };
    let mut c = json!({"sub": "bob", "exp": NOW + 60, "scope": ["kafka", "other"]});
    assert_eq!(
        v.validate_at(&unsecured(c.clone()), now())
            .unwrap()
            .principal,
        "bob"
    );
    c["scope"] = json!("kafka");
    assert!(v.validate_at(&unsecured(c.clone()), now()).is_ok());
    // As in Kafka, a string is one scope: "kafka other" is not "kafka".
    c["scope"] = json!("kafka other");
    assert!(reason(v.validate_at(&unsecured(c.clone()), now())).contains("scope"));
    c["scope"] = json!("kafka");
    c["iat"] = json!(NOW + 60);
    assert!(reason(v.validate_at(&unsecured(c.clone()), now())).contains("future"));
    c["iat"] = json!(NOW - 10);
    c["exp"] = json!(NOW - 20);
    assert!(v.validate_at(&unsecured(c), now()).is_err());
    let s = signer("k1");
    assert!(reason(v.validate_at(&s.sign(claims()), now())).contains("only unsecured"));
}
