//! SCRAM credentials (what `kafka-configs.sh --entity-type users --alter --add-config
//! 'SCRAM-SHA-256=[password=…]'` changes): the checks of AlterUserScramCredentials and the
//! answer to DescribeUserScramCredentials, with Kafka's rules and messages
//! (`ScramControlManager`). Clients send a salted password, never the password; the
//! stored and server keys are derived here, and only they are replicated.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as R;

use super::Admin;
use crate::cluster::{CommandResult, MetadataCommand, MetadataImage};
use crate::errors::KafkaError;
use crate::sasl::scram::{MAX_ITERATIONS, MIN_ITERATIONS};
use crate::sasl::{ScramCredential, ScramMechanism};

/// One change asked for: `Some((iterations, salt, salted password))` sets, `None` deletes.
#[derive(Debug, Clone)]
pub struct Alteration {
    pub user: String,
    pub mechanism: i8,
    pub upsert: Option<(i32, Vec<u8>, Vec<u8>)>,
}

/// Apply `alterations`; one result per user, in the order users first appear. A user
/// with any refused change gets that error and none of its changes is made.
pub async fn alter(
    admin: Admin<'_>,
    alterations: Vec<Alteration>,
) -> Vec<(String, Result<(), KafkaError>)> {
    let mut users: Vec<String> = Vec::new();
    let mut by_user: BTreeMap<String, Vec<Alteration>> = BTreeMap::new();
    for a in alterations {
        if !by_user.contains_key(&a.user) {
            users.push(a.user.clone());
        }
        by_user.entry(a.user.clone()).or_default().push(a);
    }
    let mut results = Vec::with_capacity(users.len());
    for user in users {
        let changes = &by_user[&user];
        let outcome = match check_user(&admin.controller.image(), &user, changes) {
            Err(e) => Err(e),
            Ok(commands) => apply(admin, commands).await,
        };
        results.push((user, outcome));
    }
    results
}

async fn apply(admin: Admin<'_>, commands: Vec<MetadataCommand>) -> Result<(), KafkaError> {
    for cmd in commands {
        match admin.controller.propose(cmd).await {
            Ok(CommandResult::Err(e)) => return Err(KafkaError::from(&e)),
            Ok(_) => {}
            Err(e) => return Err(KafkaError::from(&e)),
        }
    }
    Ok(())
}

/// The metadata commands for one user's changes, or why they are refused.
fn check_user(
    image: &MetadataImage,
    user: &str,
    changes: &[Alteration],
) -> Result<Vec<MetadataCommand>, KafkaError> {
    if user.is_empty() {
        return Err(KafkaError::with_message(
            R::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut commands = Vec::new();
    for a in changes {
        if !seen.insert(a.mechanism) {
            return Err(KafkaError::with_message(
                R::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            ));
        }
        let mechanism = ScramMechanism::from_code(a.mechanism).ok_or_else(|| {
            KafkaError::with_message(R::UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
        })?;
        let credential = match &a.upsert {
            None => {
                let exists = image
                    .scram_credentials
                    .get(user)
                    .is_some_and(|c| c.contains_key(&mechanism));
                if !exists {
                    return Err(KafkaError::with_message(
                        R::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist",
                    ));
                }
                None
            }
            Some((iterations, salt, salted)) => {
                let name = mechanism.name();
                if *iterations < MIN_ITERATIONS as i32 {
                    return Err(KafkaError::with_message(
                        R::UnacceptableCredential,
                        format!("Iterations {iterations} is less than the minimum {MIN_ITERATIONS} for {name}"),
                    ));
                }
                if *iterations > MAX_ITERATIONS as i32 {
                    return Err(KafkaError::with_message(
                        R::UnacceptableCredential,
                        format!("Iterations {iterations} is more than the maximum {MAX_ITERATIONS} for {name}"),
                    ));
                }
                if salt.is_empty() {
                    return Err(KafkaError::with_message(
                        R::UnacceptableCredential,
                        "Salt must not be empty",
                    ));
                }
                if salted.is_empty() {
                    return Err(KafkaError::with_message(
                        R::UnacceptableCredential,
                        "Salted password must not be empty",
                    ));
                }
                Some(ScramCredential::from_salted(
                    mechanism,
                    salt.clone(),
                    salted,
                    *iterations as u32,
                ))
            }
        };
        commands.push(MetadataCommand::AlterScramCredential {
            user: user.to_string(),
            mechanism,
            credential,
        });
    }
    Ok(commands)
}

/// One user's credentials as (mechanism code, iterations), or why they cannot be told.
pub type UserCredentials = (String, Result<Vec<(i8, i32)>, KafkaError>);

/// The (mechanism code, iterations) of each credential of each user asked about (every
/// user when `users` is `None` or empty); an unknown user gets RESOURCE_NOT_FOUND and a
/// user named twice DUPLICATE_RESOURCE, each in its own result.
pub fn describe(image: &MetadataImage, users: Option<Vec<String>>) -> Vec<UserCredentials> {
    let infos = |user: &str| -> Option<Vec<(i8, i32)>> {
        let creds = image.scram_credentials.get(user)?;
        Some(
            creds
                .iter()
                .map(|(m, c)| (m.code(), c.iterations as i32))
                .collect(),
        )
    };
    let users = users.filter(|u| !u.is_empty());
    let Some(users) = users else {
        return image
            .scram_credentials
            .keys()
            .map(|u| (u.clone(), Ok(infos(u).unwrap_or_default())))
            .collect();
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &users {
        *counts.entry(u.as_str()).or_default() += 1;
    }
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for u in &users {
        if !reported.insert(u.clone()) {
            continue;
        }
        let result = if counts[u.as_str()] > 1 {
            Err(KafkaError::with_message(
                R::DuplicateResource,
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            ))
        } else {
            infos(u).ok_or_else(|| {
                KafkaError::with_message(
                    R::ResourceNotFound,
                    "Attempt to describe nonexistent user",
                )
            })
        };
        out.push((u.clone(), result));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Alteration {
        Alteration {
            user: user.into(),
            mechanism,
            upsert: Some((iterations, vec![1; 16], vec![2; 32])),
        }
    }

    fn code(r: Result<Vec<MetadataCommand>, KafkaError>) -> i16 {
        r.unwrap_err().code
    }

    #[test]
    fn alterations_are_checked_as_kafka_does() {
        let img = MetadataImage::default();
        assert_eq!(
            check_user(
                &img,
                "alice",
                &[upsert("alice", 1, 4096), upsert("alice", 2, 16384)]
            )
            .unwrap()
            .len(),
            2
        );
        assert_eq!(
            code(check_user(&img, "alice", &[upsert("alice", 1, 4095)])),
            R::UnacceptableCredential.code()
        );
        assert_eq!(
            code(check_user(&img, "alice", &[upsert("alice", 1, 16385)])),
            R::UnacceptableCredential.code()
        );
        assert_eq!(
            code(check_user(&img, "alice", &[upsert("alice", 3, 4096)])),
            R::UnsupportedSaslMechanism.code()
        );
        assert_eq!(
            code(check_user(&img, "", &[upsert("", 1, 4096)])),
            R::UnacceptableCredential.code()
        );
        assert_eq!(
            code(check_user(
                &img,
                "alice",
                &[upsert("alice", 1, 4096), upsert("alice", 1, 8192)]
            )),
            R::DuplicateResource.code()
        );
        let delete = Alteration {
            user: "alice".into(),
            mechanism: 1,
            upsert: None,
        };
        assert_eq!(
            code(check_user(&img, "alice", &[delete])),
            R::ResourceNotFound.code()
        );
        let mut empty_salt = upsert("alice", 1, 4096);
        empty_salt.upsert.as_mut().unwrap().1.clear();
        assert_eq!(
            code(check_user(&img, "alice", &[empty_salt])),
            R::UnacceptableCredential.code()
        );
    }

    #[test]
    fn describe_reports_iterations_unknown_and_duplicate_users() {
        let mut img = MetadataImage::default();
        img.scram_credentials
            .entry("alice".into())
            .or_default()
            .insert(
                ScramMechanism::Sha512,
                ScramCredential::new(ScramMechanism::Sha512, "pw", 8192),
            );
        let all = describe(&img, None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.as_ref().unwrap(), &vec![(2, 8192)]);
        let some = describe(&img, Some(vec!["bob".into(), "alice".into(), "bob".into()]));
        assert_eq!(some.len(), 2);
        assert_eq!(
            some[0].1.as_ref().unwrap_err().code,
            R::DuplicateResource.code()
        );
        assert_eq!(some[1].1.as_ref().unwrap(), &vec![(2, 8192)]);
        let one = describe(&img, Some(vec!["carol".into()]));
        assert_eq!(
            one[0].1.as_ref().unwrap_err().code,
            R::ResourceNotFound.code()
        );
    }
}
