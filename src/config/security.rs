//! Listener security settings: which protocol each listener speaks
//! (`listener.security.protocol.map`, Kafka's names and default) and the TLS material and
//! rules that apply to a TLS listener (Kafka's `ssl.*` settings with `ssl.keystore.type`
//! and `ssl.truststore.type` PEM, each overridable per listener as
//! `listener.name.<listener>.ssl.*`). Only the settings are resolved and checked here;
//! `crate::tls` reads the files and builds the TLS configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::validate::{invalid, split_list};
use super::ConfigError;

/// Kafka's default `listener.security.protocol.map`; a CONTROLLER listener it does not
/// name speaks PLAINTEXT, as in Kafka when the map is left at its default.
pub const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// The settings a listener may override with `listener.name.<listener>.<setting>`.
pub const PER_LISTENER: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "sasl.enabled.mechanisms",
    "connections.max.reauth.ms",
    "sasl.jaas.config",
    "sasl.server.callback.handler.class",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
];

/// A listener's security protocol (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `ssl.client.auth`: whether a TLS listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// Asked for; a client without one is still accepted.
    Requested,
    /// A client without a certificate signed by the truststore is refused.
    Required,
}

/// A TLS protocol version Weir speaks (`ssl.enabled.protocols`): 1.2 and 1.3 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Where PEM material comes from: a file (re-read when it changes) or the setting itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// The TLS settings of one listener, resolved (per-listener overrides first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub listener: String,
    /// The certificate chain: `ssl.keystore.location` (a PEM file holding the private key
    /// and the chain, as Kafka's PEM keystore) or `ssl.keystore.certificate.chain`.
    pub certificate_chain: Pem,
    /// The private key: the same file, or `ssl.keystore.key`.
    pub private_key: Pem,
    /// `ssl.key.password`: the password of an encrypted PKCS#8 private key.
    pub key_password: Option<String>,
    /// `ssl.truststore.location` or `ssl.truststore.certificates`: the CAs that sign
    /// client certificates (needed when clients are asked for one).
    pub truststore: Option<Pem>,
    pub client_auth: ClientAuth,
    pub versions: Vec<TlsVersion>,
    /// `ssl.cipher.suites` (IANA names); empty: the provider's defaults.
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules` (checked): how a client certificate's name becomes
    /// the connection's principal.
    pub principal_rules: String,
}

/// `listener.security.protocol.map`: listener name -> protocol.
pub fn protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let name = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in split_list(value) {
        let (listener, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(name, value, "expected LISTENER:PROTOCOL entries"))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                name,
                value,
                &format!(
                    "unknown security protocol `{protocol}` (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
                ),
            )
        })?;
        map.insert(listener.trim().to_string(), protocol);
    }
    Ok(map)
}

/// The protocol of `listener` under `map`; a CONTROLLER listener left out of Kafka's
/// default map speaks PLAINTEXT.
pub fn protocol_of(
    map: &BTreeMap<String, SecurityProtocol>,
    listener: &str,
    is_controller: bool,
    map_is_default: bool,
) -> Result<SecurityProtocol, ConfigError> {
    if let Some(p) = map.get(listener) {
        return Ok(*p);
    }
    if is_controller && map_is_default {
        return Ok(SecurityProtocol::Plaintext);
    }
    Err(invalid(
        "listener.security.protocol.map",
        "",
        &format!("listener `{listener}` is not in the map: give its protocol as {listener}:PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    ))
}

/// A setting of `listener` from `get`: `listener.name.<listener>.<name>` first, then
/// `<name>`; with the name it was found under. Empty values count as unset.
pub(super) fn listener_setting(
    listener: &str,
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Option<(String, String)> {
    let own = format!("listener.name.{}.{name}", listener.to_ascii_lowercase());
    get(&own)
        .map(|v| (own, v))
        .or_else(|| get(name).map(|v| (name.to_string(), v)))
        .filter(|(_, v)| !v.trim().is_empty())
}

/// Resolves the TLS settings of `listener` from `get` (which answers explicit settings
/// and defaults): `listener.name.<listener>.<setting>` first, then `<setting>`.
pub fn tls_settings(
    listener: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<TlsSettings, ConfigError> {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let setting = |name: &str| listener_setting(listener, &get, name);
    for store in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((name, v)) = setting(store) {
            if !v.eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    &name,
                    &v,
                    "only PEM stores are supported (JKS and PKCS12 need the JVM's tools: convert them with keytool/openssl)",
                ));
            }
        }
    }
    let missing = || {
        invalid(
            &format!("{prefix}ssl.keystore.location"),
            "",
            &format!(
                "listener {listener} uses TLS: give ssl.keystore.location (a PEM file with the private key and certificate chain), or ssl.keystore.certificate.chain and ssl.keystore.key"
            ),
        )
    };
    let (certificate_chain, private_key) = match (
        setting("ssl.keystore.location"),
        setting("ssl.keystore.certificate.chain"),
        setting("ssl.keystore.key"),
    ) {
        (Some((_, path)), None, None) => {
            let path = PathBuf::from(path.trim());
            (Pem::File(path.clone()), Pem::File(path))
        }
        (None, Some((_, chain)), Some((_, key))) => (Pem::Inline(chain), Pem::Inline(key)),
        (Some((name, v)), _, _) => {
            return Err(invalid(
                &name,
                &v,
                "give either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both",
            ))
        }
        _ => return Err(missing()),
    };
    let truststore = match (
        setting("ssl.truststore.location"),
        setting("ssl.truststore.certificates"),
    ) {
        (Some((_, path)), None) => Some(Pem::File(PathBuf::from(path.trim()))),
        (None, Some((_, pem))) => Some(Pem::Inline(pem)),
        (None, None) => None,
        (Some((name, v)), Some(_)) => {
            return Err(invalid(
                &name,
                &v,
                "give either ssl.truststore.location or ssl.truststore.certificates, not both",
            ))
        }
    };
    let client_auth = match setting("ssl.client.auth") {
        None => ClientAuth::None,
        Some((name, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => return Err(invalid(&name, &v, "expected none, requested or required")),
        },
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            &format!("{prefix}ssl.client.auth"),
            "",
            &format!("listener {listener} asks clients for certificates: give ssl.truststore.location (the PEM CAs that sign them)"),
        ));
    }
    let versions = match setting("ssl.enabled.protocols") {
        None => vec![TlsVersion::Tls12, TlsVersion::Tls13],
        Some((name, v)) => {
            let mut versions = Vec::new();
            for p in split_list(&v) {
                versions.push(match p.to_ascii_uppercase().as_str() {
                    "TLSV1.2" => TlsVersion::Tls12,
                    "TLSV1.3" => TlsVersion::Tls13,
                    _ => {
                        return Err(invalid(
                            &name,
                            &v,
                            &format!("`{p}`: only TLSv1.2 and TLSv1.3 are supported"),
                        ))
                    }
                });
            }
            if versions.is_empty() {
                return Err(invalid(&name, &v, "no protocol enabled"));
            }
            versions.sort();
            versions.dedup();
            versions
        }
    };
    let principal_rules = match setting("ssl.principal.mapping.rules") {
        None => "DEFAULT".to_string(),
        Some((name, v)) => {
            crate::principal::parse_rules(&v).map_err(|e| invalid(&name, &v, &e))?;
            v
        }
    };
    let cipher_suites = setting("ssl.cipher.suites")
        .map(|(_, v)| split_list(&v))
        .unwrap_or_default();
    Ok(TlsSettings {
        listener: listener.to_string(),
        certificate_chain,
        private_key,
        key_password: setting("ssl.key.password").map(|(_, v)| v),
        truststore,
        client_auth,
        versions,
        cipher_suites,
        principal_rules,
    })
}

/// Whether `name` is a per-listener override (`listener.name.<l>.<setting>`): the
/// listener and the setting it overrides.
/// JAAS settings are per listener and mechanism:
/// `listener.name.<l>.<mechanism>.sasl.jaas.config`.
pub fn per_listener(name: &str) -> Option<(&str, &'static str)> {
    let rest = name.strip_prefix("listener.name.")?;
    let (listener, setting) = rest.split_once('.')?;
    if listener.is_empty() {
        return None;
    }
    let setting = match setting.split_once('.') {
        Some((mechanism, rest @ ("sasl.jaas.config" | "sasl.server.callback.handler.class")))
            if crate::sasl::Mechanism::ALL
                .iter()
                .any(|m| super::sasl::jaas_prefix(*m) == mechanism) =>
        {
            rest
        }
        _ if setting == "sasl.jaas.config" || setting == "sasl.server.callback.handler.class" => {
            return None
        }
        _ => setting,
    };
    PER_LISTENER
        .iter()
        .find(|s| **s == setting)
        .map(|s| (listener, *s))
}

/// How every listener is secured, resolved from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSecurity {
    /// Every listener's protocol by name (client listeners and CONTROLLER).
    pub protocols: BTreeMap<String, SecurityProtocol>,
    /// The TLS settings of every listener that speaks TLS.
    pub tls: BTreeMap<String, TlsSettings>,
    /// The client listener other brokers fetch from (`inter.broker.listener.name`, or
    /// the listener named by `security.inter.broker.protocol`; by default the first).
    pub inter_broker: String,
    /// The SASL settings of every listener that speaks SASL, and the broker-wide ones.
    pub sasl: super::sasl::Sasl,
}

impl ListenerSecurity {
    pub fn protocol(&self, listener: &str) -> SecurityProtocol {
        self.protocols
            .get(listener)
            .copied()
            .unwrap_or(SecurityProtocol::Plaintext)
    }
}

/// Resolves the security of `client` listeners and the `controller` one from `get`
/// (explicit settings over defaults); `clustered`: the node has peers (a quorum).
pub fn resolve(
    client: &[String],
    controller: Option<&str>,
    clustered: bool,
    get: impl Fn(&str) -> Option<String>,
) -> Result<ListenerSecurity, ConfigError> {
    let map_value = get("listener.security.protocol.map");
    let map_is_default = map_value.is_none();
    let map = protocol_map(map_value.as_deref().unwrap_or(DEFAULT_PROTOCOL_MAP))?;
    let mut protocols = BTreeMap::new();
    let mut tls = BTreeMap::new();
    let mut sasl = BTreeMap::new();
    let named = client
        .iter()
        .map(|l| (l.as_str(), false))
        .chain(controller.map(|l| (l, true)));
    for (listener, is_controller) in named {
        let protocol = protocol_of(&map, listener, is_controller, map_is_default)?;
        if protocol.uses_sasl() {
            if is_controller {
                return Err(invalid(
                    "listener.security.protocol.map",
                    map_value.as_deref().unwrap_or(DEFAULT_PROTOCOL_MAP),
                    &format!(
                        "the controller listener {listener} is {}: the metadata quorum authenticates nodes with TLS certificates (SSL with ssl.client.auth=required)",
                        protocol.name()
                    ),
                ));
            }
            sasl.insert(
                listener.to_string(),
                super::sasl::listener_settings(listener, &get)?,
            );
        }
        if protocol.uses_tls() {
            tls.insert(listener.to_string(), tls_settings(listener, &get)?);
        }
        protocols.insert(listener.to_string(), protocol);
    }
    let inter_broker = match (
        get("inter.broker.listener.name"),
        get("security.inter.broker.protocol"),
    ) {
        (Some(name), None) => name.trim().to_string(),
        (None, Some(protocol)) => protocol.trim().to_ascii_uppercase(),
        (None, None) => client.first().cloned().unwrap_or_default(),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "inter.broker.listener.name",
                "",
                "give inter.broker.listener.name or security.inter.broker.protocol, not both",
            ))
        }
    };
    if !client.contains(&inter_broker) {
        return Err(invalid(
            "inter.broker.listener.name",
            &inter_broker,
            &format!(
                "not one of this broker's client listeners ({})",
                client.join(", ")
            ),
        ));
    }
    let sasl = super::sasl::resolve(sasl, &inter_broker, clustered, &get)?;
    Ok(ListenerSecurity {
        protocols,
        tls,
        inter_broker,
        sasl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<TlsSettings, ConfigError> {
        tls_settings("EXTERNAL", super::super::validate::lookup(pairs))
    }

    #[test]
    fn protocol_map_parses_kafka_names_and_refuses_others() {
        let m = protocol_map("INTERNAL:PLAINTEXT, EXTERNAL:ssl").unwrap();
        assert_eq!(m["INTERNAL"], SecurityProtocol::Plaintext);
        assert_eq!(m["EXTERNAL"], SecurityProtocol::Ssl);
        assert!(protocol_map("X:TLS")
            .unwrap_err()
            .to_string()
            .contains("TLS"));
        assert!(protocol_map("X").is_err());
        let default = protocol_map(DEFAULT_PROTOCOL_MAP).unwrap();
        assert_eq!(
            protocol_of(&default, "CONTROLLER", true, true).unwrap(),
            SecurityProtocol::Plaintext
        );
        assert!(protocol_of(&default, "CLIENT", false, true).is_err());
    }

    #[test]
    fn per_listener_settings_override_the_broker_wide_ones() {
        let s = settings(&[
            ("ssl.keystore.location", "/etc/weir/all.pem"),
            (
                "listener.name.external.ssl.keystore.location",
                "/etc/weir/ext.pem",
            ),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/etc/weir/ca.pem"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ])
        .unwrap();
        assert_eq!(s.certificate_chain, Pem::File("/etc/weir/ext.pem".into()));
        assert_eq!(s.private_key, Pem::File("/etc/weir/ext.pem".into()));
        assert_eq!(s.client_auth, ClientAuth::Required);
        assert_eq!(s.truststore, Some(Pem::File("/etc/weir/ca.pem".into())));
        assert_eq!(s.versions, vec![TlsVersion::Tls13]);
    }

    #[test]
    fn bad_tls_settings_name_what_is_wrong() {
        let e = settings(&[]).unwrap_err().to_string();
        assert!(e.contains("ssl.keystore.location"), "{e}");
        let e = settings(&[
            ("ssl.keystore.location", "a.pem"),
            ("ssl.keystore.type", "JKS"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("PEM"), "{e}");
        let e = settings(&[
            ("ssl.keystore.location", "a.pem"),
            ("ssl.enabled.protocols", "TLSv1.1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("TLSv1.1"), "{e}");
        let e = settings(&[
            ("ssl.keystore.location", "a.pem"),
            ("ssl.client.auth", "required"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("truststore"), "{e}");
        let e = settings(&[
            ("ssl.keystore.location", "a.pem"),
            ("ssl.client.auth", "maybe"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("required"), "{e}");
        let inline = settings(&[
            (
                "ssl.keystore.certificate.chain",
                "-----BEGIN CERTIFICATE-----",
            ),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
        ])
        .unwrap();
        assert!(matches!(inline.certificate_chain, Pem::Inline(_)));
    }

    #[test]
    fn per_listener_names_are_recognised() {
        assert_eq!(
            per_listener("listener.name.external.ssl.client.auth"),
            Some(("external", "ssl.client.auth"))
        );
        assert_eq!(per_listener("listener.name.ssl.client.auth"), None);
        assert_eq!(per_listener("listener.name.a.b.ssl.client.auth"), None);
        assert_eq!(per_listener("listener.name.x.ssl.unknown"), None);
        assert_eq!(
            per_listener("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"),
            Some(("sasl_ssl", "sasl.jaas.config"))
        );
        assert_eq!(
            per_listener("listener.name.sasl_ssl.sasl.jaas.config"),
            None
        );
        assert_eq!(
            per_listener("listener.name.sasl_ssl.gssapi.sasl.jaas.config"),
            None
        );
    }
}
