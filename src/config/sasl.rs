//! SASL settings of the listeners that speak SASL_PLAINTEXT or SASL_SSL, with Kafka's
//! names: `sasl.enabled.mechanisms`, the JAAS settings of each mechanism
//! (`listener.name.<listener>.<mechanism>.sasl.jaas.config`, falling back to
//! `sasl.jaas.config`), `connections.max.reauth.ms` (each overridable per listener), and
//! the broker-wide `connection.failed.authentication.delay.ms`,
//! `sasl.server.max.receive.size` and `sasl.mechanism.inter.broker.protocol`.

use std::collections::BTreeMap;
use std::time::Duration;

pub use super::oauth::OAuthSettings;
use super::validate::{invalid, split_list};
use super::ConfigError;
use crate::sasl::{jaas, Mechanism};

/// The SASL settings of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub listener: String,
    /// `sasl.enabled.mechanisms`, in the order given (SaslHandshake lists them so).
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN users (`user_<name>="<password>"` in the PLAIN JAAS settings).
    pub plain_users: BTreeMap<String, String>,
    /// The broker's own user and password per mechanism (`username`, `password`): what
    /// it authenticates with when it connects to this listener itself.
    pub own_credentials: BTreeMap<Mechanism, (String, String)>,
    /// `connections.max.reauth.ms`: a session ends this long after it authenticated
    /// unless the client authenticates again (KIP-368); `None`: sessions never end.
    pub max_reauth: Option<Duration>,
    /// How OAUTHBEARER tokens are validated, when the listener enables it.
    pub oauth: Option<OAuthSettings>,
}

/// The SASL settings of every SASL listener and the broker-wide ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sasl {
    pub listeners: BTreeMap<String, SaslSettings>,
    /// `connection.failed.authentication.delay.ms`: a failed authentication is answered
    /// (and the connection closed) only after this pause, which slows password guessing.
    pub failed_authentication_delay: Duration,
    /// `sasl.server.max.receive.size`: the largest frame accepted before a client has
    /// authenticated.
    pub max_receive_size: usize,
    /// `sasl.mechanism.inter.broker.protocol` when the inter-broker listener speaks SASL.
    pub inter_broker_mechanism: Option<Mechanism>,
}

/// The name a mechanism has inside `listener.name.<l>.<mechanism>.sasl.jaas.config`.
pub fn jaas_prefix(m: Mechanism) -> String {
    m.name().to_ascii_lowercase()
}

/// Parses a mechanism list, refusing the ones Weir does not serve with a reason.
pub fn mechanisms(name: &str, value: &str) -> Result<Vec<Mechanism>, ConfigError> {
    let mut out = Vec::new();
    for m in split_list(value) {
        let mechanism = match Mechanism::parse(&m) {
            Some(mechanism) => mechanism,
            None => {
                let why = match m.as_str() {
                    "GSSAPI" => "GSSAPI (Kerberos) is not supported".to_string(),
                    other => format!("unknown mechanism `{other}`"),
                };
                return Err(invalid(
                    name,
                    value,
                    &format!("{why}: use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"),
                ));
            }
        };
        if !out.contains(&mechanism) {
            out.push(mechanism);
        }
    }
    Ok(out)
}

/// Resolves the SASL settings of `listener` from `get` (explicit settings only).
pub fn listener_settings(
    listener: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<SaslSettings, ConfigError> {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let setting = |name: &str| super::security::listener_setting(listener, get, name);
    let (name, value) = setting("sasl.enabled.mechanisms").ok_or_else(|| {
        invalid(
            &format!("{prefix}sasl.enabled.mechanisms"),
            "",
            &format!(
                "listener {listener} speaks SASL: give sasl.enabled.mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; Kafka's default, GSSAPI, is not supported)"
            ),
        )
    })?;
    let mechanisms = mechanisms(&name, &value)?;
    if mechanisms.is_empty() {
        return Err(invalid(&name, &value, "no mechanism enabled"));
    }
    let mut plain_users = BTreeMap::new();
    let mut own_credentials = BTreeMap::new();
    let mut oauth_module = None;
    for m in &mechanisms {
        let own = format!("{prefix}{}.sasl.jaas.config", jaas_prefix(*m));
        let jaas = get(&own)
            .map(|v| (own.clone(), v))
            .or_else(|| get("sasl.jaas.config").map(|v| ("sasl.jaas.config".to_string(), v)));
        let Some((jaas_name, jaas_value)) = jaas else {
            if *m == Mechanism::Plain {
                return Err(invalid(
                    &own,
                    "",
                    &format!("listener {listener} enables PLAIN: give its users as org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\" ...;"),
                ));
            }
            continue;
        };
        let module = jaas::parse(&jaas_value).map_err(|e| invalid(&jaas_name, "(hidden)", &e))?;
        let expected = match m {
            Mechanism::Plain => "PlainLoginModule",
            Mechanism::Scram(_) => "ScramLoginModule",
            Mechanism::OAuthBearer => "OAuthBearerLoginModule",
        };
        if !module.class.ends_with(expected) {
            // The broker-wide sasl.jaas.config names one module; other mechanisms, whose
            // JAAS settings are optional, do without it. PLAIN cannot: its users are there.
            if jaas_name == "sasl.jaas.config" && *m != Mechanism::Plain {
                continue;
            }
            return Err(invalid(
                &jaas_name,
                "(hidden)",
                &format!("{} needs the {expected}, not {}", m.name(), module.class),
            ));
        }
        if *m == Mechanism::Plain {
            plain_users = module.plain_users();
            if plain_users.is_empty() {
                return Err(invalid(
                    &jaas_name,
                    "(hidden)",
                    "PLAIN needs its users: user_<name>=\"<password>\" options",
                ));
            }
        }
        if *m == Mechanism::OAuthBearer {
            oauth_module = Some(module);
            continue;
        }
        if let Some(c) = module.credentials() {
            own_credentials.insert(*m, c);
        }
    }
    let oauth = match mechanisms.contains(&Mechanism::OAuthBearer) {
        true => Some(super::oauth::listener_settings(
            listener,
            get,
            oauth_module.as_ref(),
        )?),
        false => None,
    };
    let max_reauth = match setting("connections.max.reauth.ms") {
        None => None,
        Some((name, v)) => {
            let ms: i64 = v
                .trim()
                .parse()
                .map_err(|_| invalid(&name, &v, "expected milliseconds"))?;
            if ms < 0 {
                return Err(invalid(
                    &name,
                    &v,
                    "must be 0 (sessions never end) or positive",
                ));
            }
            (ms > 0).then(|| Duration::from_millis(ms as u64))
        }
    };
    Ok(SaslSettings {
        listener: listener.to_string(),
        mechanisms,
        plain_users,
        own_credentials,
        max_reauth,
        oauth,
    })
}

/// The broker-wide SASL settings, given the SASL listeners' own and the inter-broker
/// listener: when it speaks SASL and the node is one of several (`clustered`), the
/// broker needs credentials for it.
pub fn resolve(
    listeners: BTreeMap<String, SaslSettings>,
    inter_broker: &str,
    clustered: bool,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Sasl, ConfigError> {
    let ms = |name: &str, default: u64| -> Result<u64, ConfigError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(name, &v, "expected a non-negative number")),
        }
    };
    // Kafka takes a server callback handler per listener and mechanism only; a broker-wide
    // one would be accepted here and silently ignored.
    if let Some(v) = get("sasl.server.callback.handler.class") {
        return Err(invalid(
            "sasl.server.callback.handler.class",
            &v,
            "give it per listener and mechanism: listener.name.<listener>.oauthbearer.sasl.server.callback.handler.class",
        ));
    }
    let failed_authentication_delay =
        Duration::from_millis(ms("connection.failed.authentication.delay.ms", 100)?);
    let max_receive_size = ms("sasl.server.max.receive.size", 524288)? as usize;
    if max_receive_size == 0 {
        return Err(invalid(
            "sasl.server.max.receive.size",
            "0",
            "must be positive",
        ));
    }
    let inter_broker_mechanism = match listeners.get(inter_broker) {
        None => None,
        Some(l) => {
            let mechanism = match get("sasl.mechanism.inter.broker.protocol") {
                Some(v) => {
                    let m = mechanisms("sasl.mechanism.inter.broker.protocol", &v)?;
                    let [one] = m.as_slice() else {
                        return Err(invalid(
                            "sasl.mechanism.inter.broker.protocol",
                            &v,
                            "give one mechanism",
                        ));
                    };
                    *one
                }
                None => l.mechanisms[0],
            };
            if mechanism == Mechanism::OAuthBearer && !clustered {
                // A single node never connects to itself.
                return Ok(Sasl {
                    listeners,
                    failed_authentication_delay,
                    max_receive_size,
                    inter_broker_mechanism: None,
                });
            }
            if mechanism == Mechanism::OAuthBearer {
                return Err(invalid(
                    "sasl.mechanism.inter.broker.protocol",
                    mechanism.name(),
                    "brokers authenticate to each other with PLAIN or SCRAM (enable one of them on the inter-broker listener too)",
                ));
            }
            if !l.mechanisms.contains(&mechanism) {
                return Err(invalid(
                    "sasl.mechanism.inter.broker.protocol",
                    mechanism.name(),
                    &format!("not enabled on the inter-broker listener {inter_broker}"),
                ));
            }
            if !l.own_credentials.contains_key(&mechanism) {
                if !clustered {
                    // A single node never connects to itself.
                    return Ok(Sasl {
                        listeners,
                        failed_authentication_delay,
                        max_receive_size,
                        inter_broker_mechanism: None,
                    });
                }
                return Err(invalid(
                    &format!("listener.name.{}.{}.sasl.jaas.config", inter_broker.to_ascii_lowercase(), jaas_prefix(mechanism)),
                    "",
                    "the inter-broker listener speaks SASL: give the broker's own username=\"...\" password=\"...\" in its JAAS settings",
                ));
            }
            Some(mechanism)
        }
    };
    Ok(Sasl {
        listeners,
        failed_authentication_delay,
        max_receive_size,
        inter_broker_mechanism,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::validate::lookup as get;

    const PLAIN: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    #[test]
    fn kafka_style_settings_resolve() {
        let g = get(&[
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            ("listener.name.sasl_ssl.plain.sasl.jaas.config", PLAIN),
            (
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="pw";"#,
            ),
            ("listener.name.sasl_ssl.connections.max.reauth.ms", "60000"),
        ]);
        let s = listener_settings("SASL_SSL", &g).unwrap();
        assert_eq!(
            s.mechanisms,
            vec![
                Mechanism::Plain,
                Mechanism::Scram(crate::sasl::ScramMechanism::Sha512)
            ]
        );
        assert_eq!(s.plain_users.len(), 2);
        assert_eq!(s.own_credentials.len(), 2);
        assert_eq!(s.max_reauth, Some(Duration::from_secs(60)));
        let all = resolve([("SASL_SSL".to_string(), s)].into(), "SASL_SSL", true, &g).unwrap();
        assert_eq!(all.inter_broker_mechanism, Some(Mechanism::Plain));
        assert_eq!(all.failed_authentication_delay, Duration::from_millis(100));
    }

    #[test]
    fn missing_or_wrong_settings_are_explained() {
        let e = |pairs: &[(&str, &str)]| {
            listener_settings("SASL_PLAINTEXT", &get(pairs))
                .unwrap_err()
                .to_string()
        };
        assert!(e(&[]).contains("sasl.enabled.mechanisms"));
        assert!(e(&[("sasl.enabled.mechanisms", "GSSAPI")]).contains("Kerberos"));
        assert!(e(&[("sasl.enabled.mechanisms", "PLAIN")]).contains("user_<name>"));
        assert!(e(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.jaas.config", "x.ScramLoginModule required;")
        ])
        .contains("PlainLoginModule"));
        assert!(e(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "x.PlainLoginModule required username=a;"
            )
        ])
        .contains("users"));
        let hidden = e(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "x.PlainLoginModule required user_a=\"secret",
            ),
        ]);
        assert!(
            hidden.contains("unterminated") && !hidden.contains("secret"),
            "{hidden}"
        );
        // SCRAM alone needs no JAAS settings (credentials live in the metadata) unless
        // the listener is the inter-broker one of a cluster.
        let g = get(&[("sasl.enabled.mechanisms", "SCRAM-SHA-256")]);
        let s = listener_settings("SASL_PLAINTEXT", &g).unwrap();
        let one = |l: &str, clustered| {
            resolve(
                [("SASL_PLAINTEXT".to_string(), s.clone())].into(),
                l,
                clustered,
                &g,
            )
        };
        assert!(one("OTHER", true).is_ok());
        assert_eq!(
            one("SASL_PLAINTEXT", false).unwrap().inter_broker_mechanism,
            None
        );
        let e = one("SASL_PLAINTEXT", true).unwrap_err().to_string();
        assert!(e.contains("username"), "{e}");
        let g = get(&[
            ("sasl.enabled.mechanisms", "SCRAM-SHA-256"),
            (
                "sasl.server.callback.handler.class",
                "x.OAuthBearerValidatorCallbackHandler",
            ),
        ]);
        let e = resolve(
            [("SASL_PLAINTEXT".to_string(), s.clone())].into(),
            "OTHER",
            false,
            &g,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("per listener and mechanism"), "{e}");
    }
}
