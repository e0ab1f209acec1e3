//! OAUTHBEARER settings of a SASL listener, with Kafka's names (KIP-768):
//! `sasl.oauthbearer.jwks.endpoint.url` (a `file:`, `https:` or `http:` key set), the
//! expected audience and issuer, the clock skew, the principal and scope claims, the
//! key-set refresh and its backoff; each also per listener (`listener.name.<l>.…`).
//! Kafka's unsecured validator (tokens without a signature) is never a default here: a
//! listener gets it only by naming its class in
//! `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class`, and only then
//! does the JAAS module's `unsecuredValidator*` options apply.

use std::time::Duration;

use super::validate::{invalid, split_list};
use super::ConfigError;
use crate::sasl::jaas::LoginModule;
use crate::sasl::jwks::{JwksSource, Refresh};
use crate::sasl::jwt::TokenRules;

/// The class names that choose a validator (Kafka 3.x and 4.x packages both end so).
const SECURED_HANDLER: &str = "OAuthBearerValidatorCallbackHandler";
const UNSECURED_HANDLER: &str = "OAuthBearerUnsecuredValidatorCallbackHandler";

/// The settings every OAUTHBEARER listener resolves from.
pub const SETTINGS: &[&str] = &[
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.server.callback.handler.class",
];

/// Where a listener's tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthKeys {
    Jwks {
        source: JwksSource,
        refresh: Refresh,
    },
    Unsecured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    pub rules: TokenRules,
    pub keys: OAuthKeys,
}

/// Resolves `listener`'s OAUTHBEARER settings; `jaas` is its OAUTHBEARER login module,
/// when given.
pub fn listener_settings(
    listener: &str,
    get: &impl Fn(&str) -> Option<String>,
    jaas: Option<&LoginModule>,
) -> Result<OAuthSettings, ConfigError> {
    let lower = listener.to_ascii_lowercase();
    let setting = |name: &str| super::security::listener_setting(listener, get, name);
    let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
        match setting(name) {
            None => Ok(default),
            Some((n, v)) => v
                .trim()
                .parse()
                .map_err(|_| invalid(&n, &v, "expected a non-negative number")),
        }
    };
    let handler_name =
        format!("listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class");
    let handler = get(&handler_name).filter(|v| !v.trim().is_empty());
    let unsecured = match handler.as_deref().map(str::trim) {
        None => false,
        Some(c) if c.ends_with(UNSECURED_HANDLER) => true,
        Some(c) if c.ends_with(SECURED_HANDLER) => false,
        Some(c) => {
            return Err(invalid(
                &handler_name,
                c,
                &format!("Weir validates tokens itself: name Kafka's {SECURED_HANDLER} (the default) or, for tests only, {UNSECURED_HANDLER}"),
            ))
        }
    };
    let mut rules = TokenRules {
        audience: setting("sasl.oauthbearer.expected.audience")
            .map(|(_, v)| split_list(&v))
            .unwrap_or_default(),
        issuer: setting("sasl.oauthbearer.expected.issuer").map(|(_, v)| v.trim().to_string()),
        clock_skew: Duration::from_secs(number("sasl.oauthbearer.clock.skew.seconds", 30)?),
        principal_claim: setting("sasl.oauthbearer.sub.claim.name")
            .map_or("sub".into(), |(_, v)| v.trim().to_string()),
        scope_claim: setting("sasl.oauthbearer.scope.claim.name")
            .map_or("scope".into(), |(_, v)| v.trim().to_string()),
        required_scope: Vec::new(),
    };
    let url = setting("sasl.oauthbearer.jwks.endpoint.url");
    let keys = if unsecured {
        if let Some((n, v)) = url {
            return Err(invalid(
                &n,
                &v,
                &format!("listener {listener} names the unsecured validator, which checks no signature: drop one of the two"),
            ));
        }
        // Kafka's unsecured validator reads its rules from the JAAS module's options.
        let option = |k: &str| jaas.and_then(|m| m.options.get(k).cloned());
        if let Some(c) = option("unsecuredValidatorPrincipalClaimName") {
            rules.principal_claim = c;
        }
        if let Some(c) = option("unsecuredValidatorScopeClaimName") {
            rules.scope_claim = c;
        }
        if let Some(s) = option("unsecuredValidatorRequiredScope") {
            rules.required_scope = split_list(&s.replace(' ', ","));
        }
        // Its skew is in milliseconds and defaults to none.
        rules.clock_skew = match option("unsecuredValidatorAllowableClockSkewMs") {
            None => Duration::ZERO,
            Some(ms) => Duration::from_millis(ms.trim().parse().map_err(|_| {
                invalid(
                    "unsecuredValidatorAllowableClockSkewMs",
                    &ms,
                    "expected milliseconds",
                )
            })?),
        };
        OAuthKeys::Unsecured
    } else {
        let (name, value) = url.ok_or_else(|| {
            invalid(
                "sasl.oauthbearer.jwks.endpoint.url",
                "",
                &format!("listener {listener} enables OAUTHBEARER: give the identity provider's JWKS (https://… or file:/…). Unsigned tokens are accepted only with {handler_name}=org.apache.kafka.common.security.oauthbearer.internals.unsecured.{UNSECURED_HANDLER}"),
            )
        })?;
        let source = JwksSource::parse(&value).map_err(|e| invalid(&name, &value, &e))?;
        let refresh = Refresh {
            every: Duration::from_millis(
                number("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?.max(1000),
            ),
            retry_backoff: Duration::from_millis(
                number("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100)?.max(1),
            ),
            retry_backoff_max: Duration::from_millis(
                number(
                    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                    10_000,
                )?
                .max(1),
            ),
        };
        OAuthKeys::Jwks { source, refresh }
    };
    if rules.principal_claim.is_empty() {
        return Err(invalid(
            "sasl.oauthbearer.sub.claim.name",
            "",
            "name the claim that holds the principal",
        ));
    }
    Ok(OAuthSettings { rules, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pairs: &[(&str, &str)]) -> Result<OAuthSettings, String> {
        let get = super::super::validate::lookup(pairs);
        let jaas = get("listener.name.sasl_ssl.oauthbearer.sasl.jaas.config")
            .map(|v| crate::sasl::jaas::parse(&v).unwrap());
        listener_settings("SASL_SSL", &get, jaas.as_ref()).map_err(|e| e.to_string())
    }

    #[test]
    fn kafka_names_resolve_with_kafka_defaults() {
        let s = resolve(&[
            (
                "sasl.oauthbearer.jwks.endpoint.url",
                "https://idp.example/jwks",
            ),
            ("sasl.oauthbearer.expected.audience", "weir,kafka"),
            (
                "listener.name.sasl_ssl.sasl.oauthbearer.expected.issuer",
                "https://idp.example",
            ),
        ])
        .unwrap();
        assert_eq!(s.rules.audience, vec!["weir", "kafka"]);
        assert_eq!(s.rules.issuer.as_deref(), Some("https://idp.example"));
        assert_eq!(s.rules.clock_skew, Duration::from_secs(30));
        assert_eq!(s.rules.principal_claim, "sub");
        let OAuthKeys::Jwks { source, refresh } = s.keys else {
            panic!()
        };
        assert_eq!(source, JwksSource::Url("https://idp.example/jwks".into()));
        assert_eq!(refresh.every, Duration::from_secs(3600));
        assert_eq!(refresh.retry_backoff_max, Duration::from_secs(10));
    }

    #[test]
    fn unsecured_tokens_need_the_class_named_and_nothing_is_a_silent_default() {
        let e = resolve(&[]).unwrap_err();
        assert!(
            e.contains("jwks.endpoint.url") && e.contains("Unsecured"),
            "{e}"
        );
        let handler = "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class";
        let unsecured = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
        let s = resolve(&[
            (handler, unsecured),
            (
                "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config",
                r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope="kafka" unsecuredValidatorAllowableClockSkewMs="2000";"#,
            ),
        ])
        .unwrap();
        assert_eq!(s.keys, OAuthKeys::Unsecured);
        assert_eq!(s.rules.required_scope, vec!["kafka"]);
        assert_eq!(s.rules.clock_skew, Duration::from_secs(2));
        assert!(resolve(&[
            (handler, unsecured),
            ("sasl.oauthbearer.jwks.endpoint.url", "file:/x")
        ])
        .unwrap_err()
        .contains("drop one"));
        assert!(resolve(&[(handler, "com.example.MyHandler")])
            .unwrap_err()
            .contains("validates tokens itself"));
        assert!(resolve(&[("sasl.oauthbearer.jwks.endpoint.url", "ftp://x/y")]).is_err());
        assert!(resolve(&[
            ("sasl.oauthbearer.jwks.endpoint.url", "file:/x"),
            ("sasl.oauthbearer.clock.skew.seconds", "-1")
        ])
        .is_err());
    }
}
