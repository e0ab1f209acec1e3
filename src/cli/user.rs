//! `weir user ...`: SCRAM users, as `kafka-configs.sh --entity-type users` manages them
//! (`--add-config 'SCRAM-SHA-256=[iterations=8192,password=...]'`, `--delete-config`,
//! `--describe`), through DescribeUserScramCredentials and AlterUserScramCredentials.
//! The password is salted and hashed here; only the salted password crosses the wire.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::table::render;
use super::{check, error_text, Admin, CliError, Report};
use crate::sasl::scram::{random_bytes, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::sasl::ScramMechanism;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum UserCommand {
    /// Users with SCRAM credentials: their mechanisms and iterations.
    List {
        /// Only these users (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Add or replace a user's SCRAM credentials.
    Create {
        #[arg(long)]
        name: String,
        /// The password (better given in the environment than on the command line).
        #[arg(long, env = "WEIR_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM-SHA-256 and/or SCRAM-SHA-512 (repeatable; default both).
        #[arg(long = "mechanism")]
        mechanisms: Vec<String>,
        /// PBKDF2 iterations (4096 to 16384, Kafka's bounds).
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// Delete a user's SCRAM credentials (every mechanism unless named).
    Delete {
        #[arg(long)]
        name: String,
        #[arg(long = "mechanism")]
        mechanisms: Vec<String>,
    },
}

fn mechanisms(names: &[String]) -> Result<Vec<ScramMechanism>, CliError> {
    if names.is_empty() {
        return Ok(vec![ScramMechanism::Sha256, ScramMechanism::Sha512]);
    }
    names
        .iter()
        .map(|n| {
            ScramMechanism::parse(n).ok_or_else(|| {
                CliError::Usage(format!(
                    "--mechanism {n}: expected SCRAM-SHA-256 or SCRAM-SHA-512"
                ))
            })
        })
        .collect()
}

pub async fn run(c: &mut Admin, cmd: &UserCommand) -> Result<Report, CliError> {
    match cmd {
        UserCommand::List { names } => list(c, names).await,
        UserCommand::Create {
            name,
            password,
            mechanisms: m,
            iterations,
        } => {
            if !(MIN_ITERATIONS as i32..=MAX_ITERATIONS as i32).contains(iterations) {
                return Err(CliError::Usage(format!(
                    "--iterations {iterations}: expected {MIN_ITERATIONS} to {MAX_ITERATIONS}"
                )));
            }
            let upsertions = mechanisms(m)?
                .into_iter()
                .map(|m| {
                    let salt = random_bytes(32);
                    let salted = m.salted_password(password, &salt, *iterations as u32);
                    ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_mechanism(m.code())
                        .with_iterations(*iterations)
                        .with_salt(salt.into())
                        .with_salted_password(salted.into())
                })
                .collect();
            alter(c, Vec::new(), upsertions).await?;
            Ok(Report::new(
                format!("SCRAM credentials of {name} set"),
                json!({"user": name, "changed": true}),
            ))
        }
        UserCommand::Delete {
            name,
            mechanisms: m,
        } => {
            let chosen = if m.is_empty() {
                // Every mechanism the user has (deleting one it lacks is an error).
                let r = describe(c, std::slice::from_ref(name)).await?;
                let result = r.results.into_iter().next();
                let result =
                    result.ok_or_else(|| CliError::Kafka(format!("no answer for user {name}")))?;
                check(result.error_code, result.error_message)?;
                result
                    .credential_infos
                    .iter()
                    .filter_map(|i| ScramMechanism::from_code(i.mechanism))
                    .collect()
            } else {
                mechanisms(m)?
            };
            let deletions = chosen
                .into_iter()
                .map(|m| {
                    ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_mechanism(m.code())
                })
                .collect();
            alter(c, deletions, Vec::new()).await?;
            Ok(Report::new(
                format!("SCRAM credentials of {name} deleted"),
                json!({"user": name, "deleted": true}),
            ))
        }
    }
}

async fn alter(
    c: &mut Admin,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Result<(), CliError> {
    let v = c.version(ApiKey::AlterUserScramCredentials, 0, 0)?;
    let req = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let r: AlterUserScramCredentialsResponse =
        c.call(ApiKey::AlterUserScramCredentials, v, &req).await?;
    for result in r.results {
        check(result.error_code, result.error_message)?;
    }
    Ok(())
}

async fn describe(
    c: &mut Admin,
    names: &[String],
) -> Result<DescribeUserScramCredentialsResponse, CliError> {
    let v = c.version(ApiKey::DescribeUserScramCredentials, 0, 0)?;
    let users = (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|n| UserName::default().with_name(StrBytes::from_string(n.clone())))
            .collect()
    });
    let req = DescribeUserScramCredentialsRequest::default().with_users(users);
    let r: DescribeUserScramCredentialsResponse = c
        .call(ApiKey::DescribeUserScramCredentials, v, &req)
        .await?;
    check(r.error_code, r.error_message.clone())?;
    Ok(r)
}

async fn list(c: &mut Admin, names: &[String]) -> Result<Report, CliError> {
    let r = describe(c, names).await?;
    let mut rows = Vec::new();
    let mut users = Vec::new();
    for u in &r.results {
        let creds: Vec<(String, i32)> = u
            .credential_infos
            .iter()
            .map(|i| {
                let m = ScramMechanism::from_code(i.mechanism).map_or_else(
                    || format!("mechanism {}", i.mechanism),
                    |m| m.name().to_string(),
                );
                (m, i.iterations)
            })
            .collect();
        let error =
            (u.error_code != 0).then(|| error_text(u.error_code, u.error_message.as_deref()));
        for (m, i) in &creds {
            rows.push(vec![u.user.to_string(), m.clone(), i.to_string()]);
        }
        if let Some(e) = &error {
            rows.push(vec![u.user.to_string(), e.clone(), String::new()]);
        }
        users.push(json!({
            "user": u.user.as_str(),
            "credentials": creds.iter().map(|(m, i)| json!({"mechanism": m, "iterations": i})).collect::<Vec<_>>(),
            "error": error,
        }));
    }
    Ok(Report::new(
        render(&["USER", "MECHANISM", "ITERATIONS"], &rows),
        json!({ "users": users }),
    ))
}
