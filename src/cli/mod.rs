//! The operator commands of the `weir` binary (`weir topic`, `weir group`, `weir cluster`,
//! `weir produce`, `weir consume`, `weir elect`, `weir reassign`, `weir quorum`,
//! `weir user`, `weir acl`, `weir config list`): what Kafka's shell tools and Redpanda's `rpk` do, over the Kafka
//! protocol only, so they work against any Kafka-compatible broker. Each command builds a
//! [`Report`] (text for people, `--output json` for scripts); failures carry Kafka's
//! error name and a one-line explanation, and the exit code says what kind of failure
//! it was (see [`CliError::exit_code`]).

pub mod acl;
pub mod client;
pub mod client_metrics;
pub mod cluster;
pub mod config_list;
pub mod consume;
pub mod elect;
pub mod explain;
pub mod group;
pub mod member;
pub mod produce;
pub mod quorum;
pub mod reassign;
pub mod security;
pub mod table;
pub mod topic;
pub mod user;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use security::ClientTls;

pub use client::Admin;

/// How a command failed; each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The broker answered with a Kafka error.
    #[error("{0}")]
    Kafka(String),
    /// No broker could be reached, or a connection broke.
    #[error("cannot reach the cluster: {0}")]
    Connect(String),
    /// The broker does not support a request the command needs.
    #[error("the broker does not support {0}")]
    Unsupported(String),
    /// The command line or an input file is wrong.
    #[error("{0}")]
    Usage(String),
    /// The command ran and found something wrong (an unhealthy cluster, a reassignment
    /// still in progress).
    #[error("{0}")]
    Check(String),
}

impl CliError {
    /// 1: the broker refused; 2: bad usage; 3: unreachable or unsupported; 4: a check
    /// found a problem.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Kafka(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Connect(_) | CliError::Unsupported(_) => 3,
            CliError::Check(_) => 4,
        }
    }
}

/// Kafka's name of an error code, as its tools print it (UNKNOWN_TOPIC_OR_PARTITION).
pub fn error_name(code: i16) -> String {
    let Some(e) = ResponseError::try_from_code(code) else {
        return "NONE".into();
    };
    if let ResponseError::Unknown(c) = e {
        return format!("UNKNOWN_SERVER_ERROR({c})");
    }
    let camel = format!("{e:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// The error name with the broker's message, else Kafka's one-line description.
pub fn error_text(code: i16, message: Option<&str>) -> String {
    let name = error_name(code);
    match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{name}: {m}"),
        None => match explain::explain(code) {
            Some(e) => format!("{name}: {e}"),
            None => name,
        },
    }
}

/// Ok for error code 0, else the Kafka error.
pub fn check(code: i16, message: Option<StrBytes>) -> Result<(), CliError> {
    if code == 0 {
        return Ok(());
    }
    Err(CliError::Kafka(error_text(code, message.as_deref())))
}

/// What a command prints: text for a terminal, JSON for scripts.
pub struct Report {
    pub text: String,
    pub json: serde_json::Value,
    /// The command ran and found a problem: printed as usual, exit code 4.
    pub failed_check: bool,
}

impl Report {
    pub fn new(text: impl Into<String>, json: serde_json::Value) -> Report {
        Report {
            text: text.into(),
            json,
            failed_check: false,
        }
    }
}

/// The output format (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Options every command that talks to a cluster takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Brokers to bootstrap from, host:port[,host:port...].
    #[arg(
        long = "bootstrap-server",
        short = 'b',
        global = true,
        env = "WEIR_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// How long to wait for each answer, in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
    /// Connect over TLS (the brokers' listener is SSL).
    #[arg(long, global = true)]
    pub tls_enabled: bool,
    /// PEM file of the CAs that sign the brokers' certificates (default: the system's);
    /// implies --tls-enabled.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_truststore: Option<std::path::PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; implies --tls-enabled.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Kafka client properties, as Kafka's tools take them: security.protocol=SSL,
    /// ssl.truststore.location, ssl.keystore.location (PEM); the flags override it.
    #[arg(long = "command-config", global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// Authenticate with SASL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (with a user name)
    /// or OAUTHBEARER (a token as the password); the brokers' listener is
    /// SASL_PLAINTEXT, or SASL_SSL with --tls-enabled.
    #[arg(long, global = true)]
    pub sasl_mechanism: Option<String>,
    /// The SASL user name (PLAIN and SCRAM).
    #[arg(long, global = true, requires = "sasl_mechanism")]
    pub sasl_username: Option<String>,
    /// The SASL password (better given in the environment than on the command line).
    #[arg(
        long,
        global = true,
        env = "WEIR_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<String>,
}

impl Conn {
    pub async fn admin(&self) -> Result<Admin, CliError> {
        let tls = self.tls()?.connector()?;
        Admin::connect(
            &self.bootstrap,
            Duration::from_secs(self.timeout.max(1)),
            tls,
            self.sasl()?,
        )
        .await
    }

    /// The SASL the flags and --command-config ask for.
    fn sasl(&self) -> Result<Option<crate::sasl::ClientSasl>, CliError> {
        if let Some(name) = &self.sasl_mechanism {
            let mechanism = crate::sasl::Mechanism::parse(name).ok_or_else(|| {
                CliError::Usage(format!(
                    "--sasl-mechanism {name}: expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (the token as the password)"
                ))
            })?;
            let password = self.sasl_password.clone().ok_or_else(|| {
                CliError::Usage(
                    "--sasl-mechanism needs --sasl-password (or WEIR_SASL_PASSWORD)".into(),
                )
            })?;
            let user = self.sasl_username.clone().unwrap_or_default();
            if user.is_empty() && mechanism != crate::sasl::Mechanism::OAuthBearer {
                return Err(CliError::Usage(format!(
                    "--sasl-mechanism {name} needs --sasl-username"
                )));
            }
            return Ok(Some(crate::sasl::ClientSasl {
                mechanism,
                user,
                password,
            }));
        }
        match &self.command_config {
            Some(path) => {
                ClientTls::sasl_from_properties(&std::fs::read_to_string(path).map_err(|e| {
                    CliError::Usage(format!("--command-config {}: {e}", path.display()))
                })?)
            }
            None => Ok(None),
        }
    }

    /// The TLS the flags and --command-config ask for.
    fn tls(&self) -> Result<ClientTls, CliError> {
        let mut tls = match &self.command_config {
            Some(path) => {
                ClientTls::from_properties(&std::fs::read_to_string(path).map_err(|e| {
                    CliError::Usage(format!("--command-config {}: {e}", path.display()))
                })?)?
            }
            None => ClientTls::default(),
        };
        if self.tls_truststore.is_some() {
            tls.ca = self.tls_truststore.clone();
        }
        if self.tls_cert.is_some() {
            tls.cert = self.tls_cert.clone();
            tls.key = self.tls_key.clone();
        }
        tls.enabled |= self.tls_enabled || self.tls_truststore.is_some() || self.tls_cert.is_some();
        Ok(tls)
    }
}

/// Run a command's future on a small runtime and print its outcome; the exit code.
pub fn run<F>(name: &str, format: Format, fut: F) -> ExitCode
where
    F: std::future::Future<Output = Result<Report, CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(report) => {
            let out = match format {
                Format::Text if report.text.is_empty() => None,
                Format::Text => Some(report.text),
                Format::Json if report.json.is_null() => None,
                Format::Json => {
                    Some(serde_json::to_string_pretty(&report.json).unwrap_or_default())
                }
            };
            // A closed pipe (`| head`) is not an error of the command.
            if let Some(out) = out {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{out}");
            }
            if report.failed_check {
                ExitCode::from(4)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("weir {name}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Parse `name=value` pairs (settings given on the command line).
pub fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::Usage(format!("expected name=value, got {p:?}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(
            error_text(36, None),
            "TOPIC_ALREADY_EXISTS: Topic with this name already exists."
        );
        assert_eq!(
            error_text(37, Some("at most 10")),
            "INVALID_PARTITIONS: at most 10"
        );
    }

    #[test]
    fn pairs_need_a_name_and_an_equals_sign() {
        assert_eq!(
            parse_pairs(&["a=b=c".into()]).unwrap(),
            vec![("a".into(), "b=c".into())]
        );
        assert!(parse_pairs(&["novalue".into()]).is_err());
        assert!(parse_pairs(&["=x".into()]).is_err());
    }
}
